// The Session client against two in-process NodeService servers over real mTLS: a standby that
// answers UNAVAILABLE (as a standby scheduler does) and an active one, here a scripted stand-in
// for the scheduler's Session handler. Covers following leadership, Hello, heartbeats, messages
// both ways, and which events a reconnect re-sends.

import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { create } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { NodeService, type SessionRequest, type SessionResponse, SessionResponseSchema } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { createMtlsTransport, expectedService, implement, type RunningServer, serve, type TlsMaterial } from '@shellwego/kit/rpc';
import { capturingLogger } from '@shellwego/testing/logger';
import { TestPki } from '@shellwego/testing/test-pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HelloInit, SchedulerSession } from './scheduler-session.js';

interface OpenSession {
  readonly received: SessionRequest[];
  send(message: SessionResponse): void;
  end(error: ConnectError): void;
}

let pki: TestPki;
let standby: RunningServer;
let active: RunningServer;
let nodeTls: TlsMaterial;
let standbyCalls = 0;
const sessions: OpenSession[] = [];
const changed = new Set<() => void>();

function notify(): void {
  for (const wake of [...changed]) wake();
}

async function until<T>(check: () => T | undefined, what: string, pollMs = 100, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const wake = () => {
        changed.delete(wake);
        resolve();
      };
      changed.add(wake);
      setTimeout(wake, pollMs);
    });
  }
}

beforeAll(async () => {
  pki = await TestPki.create();
  nodeTls = await pki.node('n1');
  const tls = await pki.service('scheduler');
  const quiet = capturingLogger().logger;
  standby = await serve({
    name: 'standby',
    host: '127.0.0.1',
    port: 0,
    tls,
    logger: quiet,
    services: [
      implement(NodeService, {
        // A standby refuses before reading anything, as the scheduler does.
        // biome-ignore lint/correctness/useYield: a server-streaming handler that refuses at once never yields
        async *session() {
          standbyCalls += 1;
          notify();
          throw new ConnectError('this scheduler is a standby; reconnect to the active scheduler', Code.Unavailable);
        },
      }),
    ],
  });
  active = await serve({
    name: 'active',
    host: '127.0.0.1',
    port: 0,
    tls,
    logger: quiet,
    services: [
      implement(NodeService, {
        async *session(requests) {
          const received: SessionRequest[] = [];
          const outbox: SessionResponse[] = [];
          let ended: ConnectError | undefined;
          let wake: () => void = () => undefined;
          sessions.push({
            received,
            send: (m) => {
              outbox.push(m);
              wake();
            },
            end: (e) => {
              ended = e;
              wake();
            },
          });
          void (async () => {
            for await (const request of requests) {
              received.push(request);
              notify();
            }
          })().catch(() => undefined);
          notify();
          for (;;) {
            const next = outbox.shift();
            if (next !== undefined) {
              yield next;
              continue;
            }
            if (ended !== undefined) throw ended;
            await new Promise<void>((resolve) => (wake = resolve));
          }
        },
      }),
    ],
  });
});

afterAll(async () => {
  await standby?.close();
  await active?.close();
});

describe('SchedulerSession', () => {
  it('follows the active scheduler, says Hello, heartbeats, and re-sends only what a new Hello does not cover', async () => {
    const messages: SessionResponse[] = [];
    let running: HelloInit['running'] = [{ instanceId: 'i-1', state: InstanceState.HEALTHY }];
    const session = new SchedulerSession({
      urls: [standby.url, active.url],
      client: (url) => createClient(NodeService, createMtlsTransport({ baseUrl: url, server: expectedService('scheduler'), tls: nodeTls })),
      heartbeatIntervalMs: 50,
      log: capturingLogger().logger,
      // Long enough to act while no stream is open (the second connect waits at least 500 ms).
      initialBackoffMs: 500,
      maxBackoffMs: 1000,
      callbacks: {
        hello: () => ({ capacity: { cpuMillis: 2000, memoryMib: 4096, maxInstances: 10 }, labels: { zone: 'a' }, running, driver: 'process', hostname: 'h1' }),
        heartbeat: () => ({ used: { cpuMillis: 250, memoryMib: 64 }, instanceCount: running.length }),
        onMessage: (m) => {
          messages.push(m);
          notify();
        },
      },
    });
    session.start();
    try {
      const first = await until(() => sessions[0], 'a session on the active scheduler');
      expect(standbyCalls).toBeGreaterThanOrEqual(1);
      const hello = await until(() => first.received[0], 'Hello');
      expect(hello.msg.case).toBe('hello');
      if (hello.msg.case === 'hello') {
        expect(hello.msg.value).toMatchObject({
          driver: 'process',
          hostname: 'h1',
          labels: { zone: 'a' },
          capacity: { cpuMillis: 2000, memoryMib: 4096, maxInstances: 10 },
        });
        expect(hello.msg.value.running.map((r) => [r.instanceId, r.state])).toEqual([['i-1', InstanceState.HEALTHY]]);
      }
      await until(() => first.received.find((r) => r.msg.case === 'heartbeat' && r.msg.value.instanceCount === 1), 'a heartbeat');
      expect(session.connectedUrl).toBe(active.url);

      first.send(create(SessionResponseSchema, { msg: { case: 'stop', value: { instanceId: 'i-1', reason: 'test' } } }));
      await until(() => messages.find((m) => m.msg.case === 'stop'), 'the Stop');
      session.report({ instanceId: 'i-1', state: InstanceState.STOPPING, time: timestampNow(), reason: '' });
      await until(() => first.received.find((r) => r.msg.case === 'instanceEvent'), 'the event');

      // The active scheduler steps down; while the agent is away, two things happen.
      const standbyBefore = standbyCalls;
      first.end(new ConnectError('this scheduler is no longer active', Code.Unavailable));
      await until(() => (session.connected ? undefined : true), 'the stream to end', 5);
      running = [{ instanceId: 'i-2', state: InstanceState.RUNNING }];
      session.report({ instanceId: 'i-2', state: InstanceState.RUNNING, time: timestampNow(), reason: '' });
      session.report({ instanceId: 'i-1', state: InstanceState.STOPPED, time: timestampNow(), reason: 'stopped' });

      const second = await until(() => sessions[1], 'a second session');
      await until(() => (second.received.length >= 2 ? true : undefined), 'the second Hello and what waited');
      expect(standbyCalls).toBeGreaterThan(standbyBefore);
      const [again, waited] = second.received;
      expect(again?.msg.case).toBe('hello');
      if (again?.msg.case === 'hello') expect(again.msg.value.running.map((r) => r.instanceId)).toEqual(['i-2']);
      // i-2's RUNNING is in the Hello; only i-1's terminal event is sent again.
      expect(waited?.msg.case === 'instanceEvent' ? [waited.msg.value.instanceId, waited.msg.value.state] : waited?.msg.case).toEqual([
        'i-1',
        InstanceState.STOPPED,
      ]);
      expect(second.received.filter((r) => r.msg.case === 'instanceEvent')).toHaveLength(1);
    } finally {
      await session.stop();
    }
    expect(session.connected).toBe(false);
  });

  it('moves to the next scheduler at once when the connection dies, without calling it a second agent', async () => {
    // A TCP relay in front of the active scheduler stands for its host: resetting the relay's
    // sockets is what the agent sees when the scheduler process is killed.
    const sockets = new Set<Socket>();
    const relay = createServer((inbound) => {
      const outbound = connect(Number(new URL(active.url).port), '127.0.0.1');
      sockets.add(inbound);
      inbound.pipe(outbound).pipe(inbound);
      const drop = () => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('close', drop);
      inbound.on('error', drop);
      outbound.on('error', drop);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const relayUrl = `https://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    const { logger, lines } = capturingLogger();
    const opened = sessions.length;
    const session = new SchedulerSession({
      urls: [relayUrl, active.url],
      client: (url) => createClient(NodeService, createMtlsTransport({ baseUrl: url, server: expectedService('scheduler'), tls: nodeTls })),
      heartbeatIntervalMs: 50,
      log: logger,
      // Far longer than the test waits: only an immediate move to the next URL passes.
      initialBackoffMs: 20_000,
      maxBackoffMs: 20_000,
      callbacks: {
        hello: () => ({ capacity: { cpuMillis: 1000, memoryMib: 1024, maxInstances: 1 }, labels: {}, running: [], driver: 'process', hostname: 'h1' }),
        heartbeat: () => ({ instanceCount: 0 }),
        onMessage: () => undefined,
      },
    });
    session.start();
    try {
      const first = await until(() => sessions[opened], 'a session through the relay');
      await until(() => first.received.find((r) => r.msg.case === 'heartbeat'), 'a heartbeat through the relay');
      expect(session.connectedUrl).toBe(relayUrl);
      relay.close();
      for (const socket of sockets) socket.resetAndDestroy();
      const second = await until(() => sessions[opened + 1], 'a session straight to the scheduler', 20, 5_000);
      await until(() => second.received.find((r) => r.msg.case === 'hello'), 'the Hello on the new session');
      expect(session.connectedUrl).toBe(active.url);
      const ended = lines.find((line) => line.includes(relayUrl) && line.includes('retryMs') && !line.includes('opening'));
      expect(ended).toMatch(/connection to the scheduler failed/);
      expect(lines.join('\n')).not.toMatch(/second agent/);
    } finally {
      await session.stop();
    }
  });
});
