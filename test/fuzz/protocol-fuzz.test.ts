// Protocol fuzzing against the running services: every RPC of every service in the contracts
// (found by reading the generated descriptors, so an RPC added later is fuzzed without editing
// this file) gets request messages generated from its descriptor and then damaged, plus raw
// frames, over real mTLS as a caller its access option admits. Every answer must be a proper
// gRPC status, never INTERNAL or UNKNOWN for the client's mistake, never a hang, and the
// process keeps serving.
import { readFile } from 'node:fs/promises';
import http2 from 'node:http2';
import type { DescMethod, DescService } from '@bufbuild/protobuf';
import { Code } from '@connectrpc/connect';
import { PrincipalKind } from '@shellwego/contracts/common/v1/access_pb';
import { accessOf } from '@shellwego/kit/auth';
import { waitServing } from '@shellwego/kit/process';
import { type ClientTls, mtlsSessionOptions } from '@shellwego/kit/rpc';
import { grpcFrame, rawGrpcAnswer } from '@shellwego/testing/attack/raw-grpc';
import { contractServices, servingProcessOf } from '@shellwego/testing/contract-services';
import { FuzzTally, runFuzz } from '@shellwego/testing/fuzz/fuzz-run';
import { requestBytes } from '@shellwego/testing/fuzz/proto-wire';
import { expectedServerOf, type PlatformService } from '@shellwego/testing/platform';
import { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodePlatform } from '../e2e/support/node-platform.js';

const PROCESSES: readonly PlatformService[] = ['scheduler', 'secrets', 'registry', 'node-agent'];
/** How long a call may take before it counts as a hang; streams that stay open past 1 s are fine. */
const HANG_MS = 15_000;

type Caller = { readonly name: string; readonly tls: ClientTls };

let platform: NodePlatform | undefined;
let services: DescService[] = [];
const callers: Caller[] = [];

beforeAll(async () => {
  services = await contractServices();
  platform = await NodePlatform.start();
  await platform.addAgent({ key: 'fuzz', driver: 'process' });
  const { admin, pki } = platform.platform;
  callers.push({ name: 'admin', tls: admin });
  for (const name of ['scheduler', 'secrets', 'registry'] as const) {
    const paths = pki.processes[name];
    callers.push({
      name: `service/${name}`,
      tls: { caPem: admin.caPem, certPem: await readFile(paths.cert, 'utf8'), keyPem: await readFile(paths.key, 'utf8') },
    });
  }
  const { token } = await platform.nodes.createJoinToken({});
  const joined = await FakeNode.join(urlOf('scheduler'), admin.caPem, token, { hostname: 'fuzz-node' });
  callers.push({ name: 'node', tls: joined.tls });
  callers.push({ name: 'anonymous', tls: { caPem: admin.caPem } });
}, 300_000);

afterAll(async () => {
  await platform?.stop();
});

/** The caller to fuzz a method as: one its access option admits (an admin first), else nobody useful. */
function callerFor(method: DescMethod): Caller {
  const allow = accessOf(method).allow;
  const byName = (name: string) => callers.find((c) => c.name === name) as Caller;
  if (allow.some((a) => a.kind === PrincipalKind.USER && (a.role === '' || a.role === 'admin'))) return byName('admin');
  if (allow.some((a) => a.kind === PrincipalKind.NODE)) return byName('node');
  const service = allow.find((a) => a.kind === PrincipalKind.SERVICE);
  if (service !== undefined) return byName(`service/${service.service || 'scheduler'}`);
  if (allow.some((a) => a.kind === PrincipalKind.ANONYMOUS)) return byName('anonymous');
  return byName('admin');
}

function urlOf(process: PlatformService): string {
  const p = platform as NodePlatform;
  return process === 'node-agent' ? p.agent('fuzz').process.url : p.platform.url(process);
}

/** One HTTP/2 session per process and caller, reopened if the server closed it. */
const sessions = new Map<string, http2.ClientHttp2Session>();
/** GOAWAY codes the servers sent. */
const goaways: number[] = [];
function sessionFor(process: PlatformService, caller: Caller): http2.ClientHttp2Session {
  const key = `${process} ${caller.name}`;
  const open = sessions.get(key);
  if (open !== undefined && !open.closed && !open.destroyed) return open;
  // The client's own memory limit counts request data the server refused unread; at Node's default
  // (10 MB) two oversize messages in a row made this client reset its own next calls.
  const session = http2.connect(urlOf(process), { ...mtlsSessionOptions(caller.tls, expectedServerOf(process)), maxSessionMemory: 256 });
  session.on('error', () => undefined);
  // After a GOAWAY the server refuses new streams on this connection: the next call opens another.
  session.on('goaway', (code: number) => {
    goaways.push(code);
    if (sessions.get(key) === session) sessions.delete(key);
  });
  sessions.set(key, session);
  return session;
}

/** What is sent: a generated request in one frame, or a raw frame that breaks the framing itself. */
function requestFrames(method: DescMethod): fc.Arbitrary<Buffer> {
  const generated = requestBytes(method.input).map((bytes) => grpcFrame(bytes));
  const raw = fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    // A compressed flag without a grpc-encoding.
    fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.concat([Buffer.of(1), Buffer.from(grpcFrame(b).subarray(1))])),
    // A length prefix promising more than is sent.
    fc.integer({ min: 1, max: 2 ** 31 - 1 }).map((n) => {
      const frame = grpcFrame(new Uint8Array(4));
      frame.writeUInt32BE(n + 4, 1);
      return frame;
    }),
    // Two messages where one is expected, and a message over the size limit.
    fc.constant(Buffer.concat([grpcFrame(new Uint8Array()), grpcFrame(new Uint8Array())])),
    fc.constant(grpcFrame(new Uint8Array(5 * 1024 * 1024))),
  );
  return fc.oneof({ weight: 9, arbitrary: generated }, { weight: 1, arbitrary: raw });
}

describe('protocol fuzzing against the running services', () => {
  it('covers every contract package and finds every RPC', () => {
    for (const service of services) expect(servingProcessOf(service), service.typeName).toBeDefined();
    expect(services.flatMap((s) => s.methods).length).toBeGreaterThan(40);
  });

  for (const process of PROCESSES) {
    it(`answers ${process}'s every RPC with a proper status for generated and damaged requests, and keeps serving`, { timeout: 900_000 }, async () => {
      const methods = services.filter((s) => servingProcessOf(s) === process).flatMap((s) => s.methods);
      expect(methods.length).toBeGreaterThan(0);
      const tally = new FuzzTally();
      const property = fc.asyncProperty(
        fc.constantFrom(...methods).chain((method) => requestFrames(method).map((frames) => ({ method, frames }))),
        async ({ method, frames }) => {
          const caller = callerFor(method);
          const path = `/${method.parent.typeName}/${method.name}`;
          const streaming = method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming';
          let answer = await rawGrpcAnswer(sessionFor(process, caller), path, frames, { streaming, hangMs: HANG_MS });
          // REFUSED_STREAM means the server never started the call (its connection was going away);
          // ENHANCE_YOUR_CALM, that this connection went over the server's memory limit (several
          // oversize messages in a row). A client retries on a new connection, and so does this one, once.
          const retryable = [http2.constants.NGHTTP2_REFUSED_STREAM, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM];
          if (answer.status === undefined && retryable.includes(answer.rstCode)) {
            sessions.delete(`${process} ${caller.name}`);
            answer = await rawGrpcAnswer(sessionFor(process, caller), path, frames, { streaming, hangMs: HANG_MS });
          }
          const what = `${path} as ${caller.name}: status ${answer.status} ${answer.message.slice(0, 300)} (rst ${answer.rstCode}; GOAWAY codes so far: ${goaways.join(',') || 'none'})`;
          expect(answer.hung, `${what}: no answer within ${HANG_MS} ms`).toBe(false);
          if (answer.open) {
            tally.count('stream open');
            return;
          }
          // Still over the limit on a fresh connection: the message itself is too big to buffer
          // (gRPC clients report this reset as RESOURCE_EXHAUSTED).
          if (answer.status === undefined && answer.rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM) {
            tally.count('ENHANCE_YOUR_CALM');
            return;
          }
          expect(answer.status, `${what}: the stream ended without a grpc-status`).toBeDefined();
          expect([Code.Internal, Code.Unknown], what).not.toContain(answer.status);
          tally.count(answer.status === 0 ? 'ok' : (Code[answer.status as Code] ?? String(answer.status)));
        },
      );
      await runFuzz(`protocol/${process}`, 1000, property, tally);
      // Still serving, as itself.
      const p = platform as NodePlatform;
      expect(await waitServing(urlOf(process), expectedServerOf(process), p.platform.admin, 10_000, new AbortController().signal)).toBe(true);
      const running = process === 'node-agent' ? p.agent('fuzz').process : p.platform.service(process);
      expect(running.process.child.exitCode).toBeNull();
    });
  }
});
