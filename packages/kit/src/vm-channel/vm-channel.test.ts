import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { GuestService, RunRequestSchema } from '@shellwego/contracts/guest/v1/guest_pb';
import { FirecrackerVsockStandIn, SerialPortStandIn, standInGuestRoutes } from '@shellwego/testing/vm-channel-stand-ins';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GuestClientChannel } from './channel.js';
import { connectFirecrackerVsock } from './connect-firecracker-vsock.js';
import { createGuestTransport, type GuestTransport } from './create-guest-transport.js';
import { GuestSessionManager } from './guest-session-manager.js';
import { type GuestChannelServer, serveGuestChannel } from './serve-guest-channel.js';

let dir: string;
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vm-channel-'));
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup();
  }
  await rm(dir, { recursive: true, force: true });
});

function transport(channel: GuestClientChannel, connectTimeoutMs = 5_000): GuestTransport {
  const t = createGuestTransport(channel, { connectTimeoutMs });
  cleanups.push(() => t.close());
  return t;
}

function track(server: GuestChannelServer): GuestChannelServer {
  cleanups.push(() => server.close());
  return server;
}

/** Run, Health and a server stream: the three call shapes the node agent uses. */
async function roundTrip(t: GuestTransport, argv: string[]): Promise<void> {
  const client = createClient(GuestService, t);
  const run = await client.run(create(RunRequestSchema, { argv }));
  expect(run.pid).toBe(argv.length);
  const health = await client.health({});
  expect(health.agentAlive).toBe(true);
  expect(health.detail).toBe(argv.join(' '));
  const outputs: string[] = [];
  for await (const event of client.wait({})) {
    if (event.event.case === 'output') {
      outputs.push(Buffer.from(event.event.value.data).toString());
    }
  }
  expect(outputs).toEqual(argv);
  const err = await client.signal({ signal: 'SIGTERM' }).catch((e: unknown) => e);
  expect(ConnectError.from(err).code).toBe(Code.FailedPrecondition);
}

describe('GuestService over a Unix socket', () => {
  it('serves unary and streaming calls and propagates error codes', async () => {
    const path = join(dir, 'agent.sock');
    track(await serveGuestChannel(standInGuestRoutes, { kind: 'unix', path }));
    await roundTrip(transport({ kind: 'unix', path }), ['a', 'bb', 'ccc']);
  });

  it('fails with UNAVAILABLE when nothing listens', async () => {
    const client = createClient(GuestService, transport({ kind: 'unix', path: join(dir, 'none.sock') }));
    const err = await client.health({}).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Unavailable);
  });
});

describe('GuestService over a virtio-serial port (SerialPortStandIn stands in for QEMU + the guest char device)', () => {
  async function setUp(): Promise<{ port: SerialPortStandIn; channel: GuestClientChannel }> {
    const port = await SerialPortStandIn.listen(join(dir, 'chardev.sock'));
    cleanups.push(() => port.close());
    track(
      await serveGuestChannel(
        standInGuestRoutes,
        { kind: 'char-device', path: '/dev/virtio-ports/stand-in' },
        {
          openDevice: async () => port.device,
        },
      ),
    );
    return { port, channel: { kind: 'qemu-serial', path: port.hostPath } };
  }

  it('completes the handshake and serves calls', async () => {
    const { channel } = await setUp();
    await roundTrip(transport(channel), ['x', 'y']);
  });

  it('serves a new host connection after the previous one closed', async () => {
    const { channel } = await setUp();
    const first = transport(channel);
    await roundTrip(first, ['one']);
    first.close();
    const second = transport(channel);
    await roundTrip(second, ['two', 'three']);
    // Like QEMU's chardev, the port takes one host at a time; the closed transport reconnects
    // on its next call once the second is gone.
    second.close();
    const again = await createClient(GuestService, first).health({});
    expect(again.detail).toBe('two three');
  });

  it('recovers when a host vanished without the guest noticing before the next host came', async () => {
    const { port, channel } = await setUp();
    await roundTrip(transport(channel), ['before']);
    // The first host dies abruptly (no GOAWAY) and the guest's reader never sees the gap: the
    // next host's HELLO lands in the dead session, which the guest drops; the resent HELLO opens
    // a fresh one.
    port.reportDisconnects = false;
    port.dropHost();
    const health = await createClient(GuestService, transport(channel)).health({});
    expect(health.detail).toBe('before');
  });

  it('fails with UNAVAILABLE when no guest agent answers within the connect timeout', async () => {
    const port = await SerialPortStandIn.listen(join(dir, 'silent.sock'));
    cleanups.push(() => port.close());
    const client = createClient(GuestService, transport({ kind: 'qemu-serial', path: port.hostPath }, 300));
    const err = await client.health({}).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Unavailable);
    expect(ConnectError.from(err).rawMessage).toMatch(/virtio-serial/);
  });
});

describe('GuestService over Firecracker hybrid vsock (FirecrackerVsockStandIn stands in for Firecracker)', () => {
  it('speaks CONNECT/OK and serves calls', async () => {
    const guestSocketPath = join(dir, 'guest.sock');
    track(await serveGuestChannel(standInGuestRoutes, { kind: 'unix', path: guestSocketPath }));
    const udsPath = join(dir, 'v.sock');
    const device = await FirecrackerVsockStandIn.listen({ udsPath, guestPort: 1024, guestSocketPath });
    cleanups.push(() => device.close());
    await roundTrip(transport({ kind: 'firecracker-vsock', udsPath, port: 1024 }), ['fc']);
    expect(device.connectAttempts).toBe(1);
  });

  it('retries while the device is not there yet and while the guest does not listen', async () => {
    const guestSocketPath = join(dir, 'guest.sock');
    track(await serveGuestChannel(standInGuestRoutes, { kind: 'unix', path: guestSocketPath }));
    const udsPath = join(dir, 'v.sock');
    const client = createClient(GuestService, transport({ kind: 'firecracker-vsock', udsPath, port: 1024 }));
    const call = client.run(create(RunRequestSchema, { argv: ['late'] }));
    // The socket does not exist yet (Firecracker not started), then the first three CONNECTs
    // are closed (guest agent not listening yet).
    await new Promise((resolve) => setTimeout(resolve, 50));
    const device = await FirecrackerVsockStandIn.listen({ udsPath, guestPort: 1024, guestSocketPath, refuseFirst: 3 });
    cleanups.push(() => device.close());
    expect((await call).pid).toBe(1);
    expect(device.connectAttempts).toBe(4);
  });

  it('gives up on an attempt the device leaves unanswered and tries again', async () => {
    const guestSocketPath = join(dir, 'guest.sock');
    track(await serveGuestChannel(standInGuestRoutes, { kind: 'unix', path: guestSocketPath }));
    const udsPath = join(dir, 'v.sock');
    const device = await FirecrackerVsockStandIn.listen({ udsPath, guestPort: 1024, guestSocketPath, refuseFirst: 1, silentFirst: 1 });
    cleanups.push(() => device.close());
    const sessions = new GuestSessionManager('http://guest-agent.invalid', (signal) =>
      connectFirecrackerVsock(udsPath, 1024, { attemptTimeoutMs: 100, timeoutMs: 5000, signal }),
    );
    cleanups.push(() => sessions.close());
    const client = createClient(GuestService, createGrpcTransport({ baseUrl: 'http://guest-agent.invalid', sessionManager: sessions }));
    expect((await client.run(create(RunRequestSchema, { argv: ['a', 'b'] }))).pid).toBe(2);
    expect(device.connectAttempts).toBe(3);
  });

  it('fails with UNAVAILABLE naming the channel when the guest never listens', async () => {
    const udsPath = join(dir, 'v.sock');
    const device = await FirecrackerVsockStandIn.listen({ udsPath, guestPort: 1024, guestSocketPath: join(dir, 'nobody.sock') });
    cleanups.push(() => device.close());
    const client = createClient(GuestService, transport({ kind: 'firecracker-vsock', udsPath, port: 1024 }, 300));
    const err = await client.health({}).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Unavailable);
    expect(ConnectError.from(err).rawMessage).toContain(udsPath);
    expect(device.connectAttempts).toBeGreaterThan(1);
  });
});
