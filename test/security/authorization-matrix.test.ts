// The authorization matrix, generated from the contract: for every RPC of every service (read
// from the generated descriptors, so an RPC added later is covered without editing this test)
// and every kind of caller, the outcome against the real processes is exactly what the RPC's
// access option declares. Callers: no certificate, a foreign CA's certificate, an expired one, a
// revoked one, an admin, a viewer (the read-only role), a user with an unrelated role, a node
// that joined, and each control service.
import { readFile, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import type { DescMethod, DescService } from '@bufbuild/protobuf';
import { Code } from '@connectrpc/connect';
import { accessOf, admitsAnonymous, type CallerIdentity, isAllowed } from '@shellwego/kit/auth';
import { CertificateAuthority, type Principal } from '@shellwego/kit/pki';
import { type ClientTls, mtlsSessionOptions } from '@shellwego/kit/rpc';
import { grpcFrame, rawGrpcAnswer } from '@shellwego/testing/attack/raw-grpc';
import { contractServices, servingProcessOf } from '@shellwego/testing/contract-services';
import { expectedServerOf, type PlatformService } from '@shellwego/testing/platform';
import { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import { TestPki } from '@shellwego/testing/test-pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodePlatform } from '../e2e/support/node-platform.js';

type Outcome = 'admitted' | 'denied' | 'unauthenticated';

interface Caller {
  readonly name: string;
  readonly tls: ClientTls;
  /** The principal the certificate proves; undefined when it proves none (missing, foreign, expired, revoked). */
  readonly identity: CallerIdentity | undefined;
}

let platform: NodePlatform | undefined;
let services: DescService[] = [];
const callers: Caller[] = [];

beforeAll(async () => {
  services = await contractServices();
  platform = await NodePlatform.start();
  await platform.addAgent({ key: 'matrix', driver: 'process' });
  const { admin, pki } = platform.platform;
  const root = await CertificateAuthority.load(await readFile(pki.caCert, 'utf8'), await readFile(pki.caKey, 'utf8'));
  const user = async (principal: Principal, validityMs = 3_600_000) => {
    const issued = await root.issue({ principal, validityMs });
    return { tls: { caPem: admin.caPem, certPem: issued.certPem, keyPem: issued.keyPem }, serial: issued.serial };
  };
  const foreign = await (await TestPki.create()).admin();
  const revoked = await user({ kind: 'user', name: 'mallory', roles: ['admin'] });
  await writeFile(pki.revocationList, `${revoked.serial}\n`, { flag: 'a' });

  const adminUser: Principal = { kind: 'user', name: 'admin', roles: ['admin'] };
  const viewer: Principal = { kind: 'user', name: 'val', roles: ['viewer'] };
  const metrics: Principal = { kind: 'user', name: 'prometheus', roles: ['metrics'] };
  callers.push(
    { name: 'no certificate', tls: { caPem: admin.caPem }, identity: { kind: 'anonymous' } },
    { name: "a foreign CA's admin", tls: { caPem: admin.caPem, certPem: foreign.certPem, keyPem: foreign.keyPem }, identity: undefined },
    { name: 'an expired admin', tls: (await user(adminUser, -60_000)).tls, identity: undefined },
    { name: 'a revoked admin', tls: revoked.tls, identity: undefined },
    { name: 'admin', tls: admin, identity: adminUser },
    { name: 'viewer', tls: (await user(viewer)).tls, identity: viewer },
    { name: 'a user with role metrics', tls: (await user(metrics)).tls, identity: metrics },
  );
  for (const name of ['scheduler', 'secrets', 'registry'] as const) {
    const paths = pki.processes[name];
    callers.push({
      name: `service/${name}`,
      tls: { caPem: admin.caPem, certPem: await readFile(paths.cert, 'utf8'), keyPem: await readFile(paths.key, 'utf8') },
      identity: { kind: 'service', name },
    });
  }
  const { token } = await platform.nodes.createJoinToken({});
  const joined = await FakeNode.join(platform.platform.url('scheduler'), admin.caPem, token, { hostname: 'matrix-node' });
  callers.push({ name: 'node', tls: joined.tls, identity: { kind: 'node', id: joined.nodeId } });
}, 300_000);

afterAll(async () => {
  await platform?.stop();
});

function urlOf(process: PlatformService): string {
  const p = platform as NodePlatform;
  return process === 'node-agent' ? p.agent('matrix').process.url : p.platform.url(process);
}

/** What the access option declares for this caller. */
function expectedOutcome(method: DescMethod, caller: Caller): Outcome {
  const access = accessOf(method);
  if (caller.identity === undefined) return 'unauthenticated';
  if (caller.identity.kind === 'anonymous') return admitsAnonymous(access) ? 'admitted' : 'unauthenticated';
  return isAllowed(access, caller.identity) ? 'admitted' : 'denied';
}

/** What the server did: refused on who the caller is, refused on what it may call, or let the call reach the handler. */
async function observedOutcome(session: http2.ClientHttp2Session, method: DescMethod): Promise<{ outcome: Outcome; detail: string }> {
  const streaming = method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming';
  const answer = await rawGrpcAnswer(session, `/${method.parent.typeName}/${method.name}`, grpcFrame(new Uint8Array()), { streaming });
  const detail = `status ${answer.status ?? (answer.open ? 'none, stream open' : `none, rst ${answer.rstCode}`)} ${answer.message}`;
  if (answer.status === Code.Unauthenticated) return { outcome: 'unauthenticated', detail };
  // The authorizer's refusal names the caller and what the RPC allows; a handler's own PERMISSION_DENIED does not.
  if (answer.status === Code.PermissionDenied && / may not call /.test(answer.message)) return { outcome: 'denied', detail };
  return { outcome: 'admitted', detail };
}

describe('the authorization matrix, from the contract', () => {
  it('gives every caller exactly the outcome each RPC declares, on every service', { timeout: 600_000 }, async () => {
    // Each process re-reads the revocation file every 2 s: wait until every one refuses the revoked admin.
    const revoked = callers.find((c) => c.name === 'a revoked admin') as Caller;
    const anyMethodOf = (process: PlatformService) => services.filter((s) => servingProcessOf(s) === process).flatMap((s) => s.methods)[0] as DescMethod;
    for (const process of ['scheduler', 'secrets', 'registry', 'node-agent'] as const) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const session = http2.connect(urlOf(process), mtlsSessionOptions(revoked.tls, expectedServerOf(process)));
        session.on('error', () => undefined);
        const { outcome } = await observedOutcome(session, anyMethodOf(process));
        session.close();
        if (outcome === 'unauthenticated' || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }

    const wrong: string[] = [];
    const counts = new Map<Outcome, number>();
    for (const service of services) {
      const process = servingProcessOf(service);
      expect(process, `${service.typeName}: which process serves it?`).toBeDefined();
      if (process === undefined || process === 'vm-channel') continue;
      for (const caller of callers) {
        const session = http2.connect(urlOf(process), mtlsSessionOptions(caller.tls, expectedServerOf(process)));
        session.on('error', () => undefined);
        try {
          for (const method of service.methods) {
            const expected = expectedOutcome(method, caller);
            const { outcome, detail } = await observedOutcome(session, method);
            counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
            if (outcome !== expected) wrong.push(`${service.name}/${method.name} as ${caller.name}: expected ${expected}, got ${outcome} (${detail})`);
          }
        } finally {
          session.close();
        }
      }
    }
    const cells = [...counts.values()].reduce((a, b) => a + b, 0);
    console.log(`[authorization matrix] ${cells} cells (${callers.length} callers): ${[...counts].map(([o, n]) => `${n} ${o}`).join(', ')}`);
    expect(wrong).toEqual([]);
    for (const outcome of ['admitted', 'denied', 'unauthenticated'] as const) expect(counts.get(outcome) ?? 0).toBeGreaterThan(0);
  });
});
