// Joining: one-time tokens, CSR signing, the node certificate and its
// renewal, and the Session's admission rules, against a real scheduler.
import { X509Certificate } from 'node:crypto';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { NodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import { NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { PushQueue } from '@shellwego/kit/async';
import { createCsr, pemCertificates, TrustBundle } from '@shellwego/kit/pki';
import { createMtlsTransport, expectedService } from '@shellwego/kit/rpc';
import { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import { HEARTBEAT_INTERVAL_MS, SchedulerHarness } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { durationFromMs } from '../src/model/durations.js';

let harness: SchedulerHarness;
beforeAll(async () => {
  harness = await SchedulerHarness.start();
});
afterAll(async () => {
  await harness?.stop();
});

async function refusal(promise: Promise<unknown>): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  if (error === undefined) throw new Error('expected the call to be refused');
  return error;
}

const capacity = { cpuMillis: 4000, memoryMib: 8192, maxInstances: 10 };

describe('joining with a token', () => {
  it('signs the CSR for spiffe://shellwego/node/<id> and refuses the same token a second time', async () => {
    const token = await harness.token({ zone: 'a' });
    const joined = await FakeNode.join(harness.url, harness.caPem, token, { hostname: 'worker-1', labels: { disk: 'ssd', zone: 'b' } });
    expect(joined.nodeId).toMatch(/^worker-1-[0-9a-f]{8}$/);

    const cert = new X509Certificate(joined.tls.certPem);
    expect(cert.subjectAltName).toContain(`URI:spiffe://shellwego/node/${joined.nodeId}`);
    // node -> node intermediate -> root: the chain comes with the certificate, and the intermediate is one the bundle trusts for nodes.
    const [, intermediatePem, ...rest] = pemCertificates(joined.tls.certPem);
    expect(rest).toEqual([]);
    const intermediate = new X509Certificate(intermediatePem ?? '');
    expect(cert.verify(intermediate.publicKey)).toBe(true);
    const trust = TrustBundle.parse(harness.caPem);
    expect(trust.issuerOf(cert)).toEqual({ role: 'node-issuing', subject: 'CN=shellwego development node CA' });
    expect(trust.nodeIssuers.map((c) => c.fingerprint256)).toEqual([intermediate.fingerprint256]);
    expect(intermediate.verify(trust.roots[0]?.publicKey ?? intermediate.publicKey)).toBe(true);
    expect(cert.verify(trust.roots[0]?.publicKey ?? intermediate.publicKey)).toBe(false);
    const lifetimeMs = Date.parse(cert.validTo) - Date.now();
    expect(lifetimeMs).toBeGreaterThan(23 * 3_600_000);
    expect(lifetimeMs).toBeLessThan(25 * 3_600_000);
    expect(joined.response.caPem).toBe(harness.caPem);

    const again = await refusal(FakeNode.join(harness.url, harness.caPem, token, { hostname: 'worker-2' }));
    expect(again.code).toBe(Code.PermissionDenied);
    expect(again.rawMessage).toMatch(/already used/);

    // The node is registered with the token's labels; the ones it asked for are only what it reports.
    const { nodes } = await harness.nodeService.listNodes({});
    const node = nodes.find((n) => n.id === joined.nodeId);
    expect(node?.state).toBe(NodeState.UNSPECIFIED);
    expect(node?.labels).toEqual({ zone: 'a' });
    expect(node?.reportedLabels).toEqual({ disk: 'ssd', zone: 'b' });

    // Refusals are recorded by token id, in aggregate within the join audit interval; the token itself never reaches a log line.
    const tokenId = token.split('.')[1] as string;
    await vi.waitFor(() => expect(harness.lines().some((l) => l.includes('join refused') && l.includes('used-token') && l.includes(tokenId))).toBe(true), {
      timeout: 10_000,
    });
    expect(harness.lines().some((l) => l.includes(token.split('.')[2] as string))).toBe(false);
  });

  it('refuses host names reserved for loopback and the platform services, and the token stays usable', async () => {
    const token = await harness.token();
    for (const hostname of ['localhost', 'LOCALHOST.', 'evil.localhost', '127.0.0.1', '::1', 'secrets', 'registry.example.com', 'scheduler']) {
      const refused = await refusal(FakeNode.join(harness.url, harness.caPem, token, { hostname }));
      expect(refused.code, hostname).toBe(Code.InvalidArgument);
      expect(refused.rawMessage, hostname).toMatch(/info\.hostname: .* is reserved/);
    }
    const joined = await FakeNode.join(harness.url, harness.caPem, token, { hostname: 'secrets-worker-1' });
    expect(new X509Certificate(joined.tls.certPem).subjectAltName).toContain('DNS:secrets-worker-1');
  });

  it('refuses unknown, garbled and expired tokens', async () => {
    const unknown = await refusal(FakeNode.join(harness.url, harness.caPem, `swj1.0123456789abcdef.${'A'.repeat(43)}`));
    expect(unknown.code).toBe(Code.PermissionDenied);
    expect(unknown.rawMessage).toMatch(/not known/);

    const garbled = await refusal(FakeNode.join(harness.url, harness.caPem, 'let-me-in'));
    expect(garbled.code).toBe(Code.PermissionDenied);

    const { token } = await harness.nodeService.createJoinToken({ ttl: durationFromMs(1_000) });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const expired = await refusal(FakeNode.join(harness.url, harness.caPem, token));
    expect(expired.code).toBe(Code.PermissionDenied);
    expect(expired.rawMessage).toMatch(/expired/);

    const tooLong = await refusal(harness.nodeService.createJoinToken({ ttl: durationFromMs(8 * 86_400_000) }));
    expect(tooLong.code).toBe(Code.InvalidArgument);
    expect(tooLong.rawMessage).toMatch(/^ttl: /);
  });

  it('answers a bad CSR with INVALID_ARGUMENT and leaves the token usable', async () => {
    const token = await harness.token();
    const anonymous = createClient(
      NodeService,
      createMtlsTransport({ baseUrl: harness.url, server: expectedService('scheduler'), tls: { caPem: harness.caPem } }),
    );
    const bad = await refusal(anonymous.joinNode({ token, csrPem: '-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----\n' }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toMatch(/^csr_pem: /);
    const joined = await FakeNode.join(harness.url, harness.caPem, token);
    expect(joined.nodeId).toMatch(/^fake-node-/);
  });

  it('renews the certificate of the calling node only, whatever name the CSR asks for', async () => {
    const joined = await FakeNode.join(harness.url, harness.caPem, await harness.token(), { hostname: 'renewer' });
    const asNode = createClient(NodeService, createMtlsTransport({ baseUrl: harness.url, server: expectedService('scheduler'), tls: joined.tls }));
    const { csrPem } = await createCsr('someone-else');
    const renewed = await asNode.renewNodeCertificate({ csrPem });
    const cert = new X509Certificate(renewed.certificatePem);
    expect(cert.subjectAltName).toBe(`URI:spiffe://shellwego/node/${joined.nodeId}, DNS:renewer`);

    const asAdmin = await refusal(harness.nodeService.renewNodeCertificate({ csrPem }));
    expect(asAdmin.code).toBe(Code.PermissionDenied);
  });

  it('renews only from the current certificate, once: a superseded certificate and a second parallel renewal are refused', async () => {
    const joined = await FakeNode.join(harness.url, harness.caPem, await harness.token(), { hostname: 'rotating' });
    const asCert = (certPem: string, keyPem: string) =>
      createClient(
        NodeService,
        createMtlsTransport({ baseUrl: harness.url, server: expectedService('scheduler'), tls: { caPem: harness.caPem, certPem, keyPem } }),
      );
    const second = await createCsr('rotating');
    const cert2 = await asCert(joined.tls.certPem, joined.tls.keyPem).renewNodeCertificate({ csrPem: second.csrPem });

    // The first certificate was superseded: it can no longer renew (a thief holding it gets nothing).
    const stale = await refusal(asCert(joined.tls.certPem, joined.tls.keyPem).renewNodeCertificate({ csrPem: (await createCsr('x')).csrPem }));
    expect(stale.code).toBe(Code.PermissionDenied);
    expect(stale.rawMessage).toMatch(/not node .* current certificate/);

    // Two renewals racing with the current certificate: exactly one gets a successor.
    const racers = await Promise.allSettled(
      [1, 2].map(async () => asCert(cert2.certificatePem, second.keyPem).renewNodeCertificate({ csrPem: (await createCsr('rotating')).csrPem })),
    );
    expect(racers.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = racers.find((r) => r.status === 'rejected');
    expect(ConnectError.from((lost as PromiseRejectedResult).reason).code).toBe(Code.PermissionDenied);
  });
});

describe('the node session', () => {
  it('is for node certificates only, starts with Hello, and a newer session replaces the older', async () => {
    const adminSession = harness.nodeService.session(new PushQueue(), { timeoutMs: 0 });
    const notANode = await refusal(
      (async () => {
        for await (const _ of adminSession) break;
      })(),
    );
    expect(notANode.code).toBe(Code.PermissionDenied);

    const joined = await FakeNode.join(harness.url, harness.caPem, await harness.token());
    const asNode = createClient(NodeService, createMtlsTransport({ baseUrl: harness.url, server: expectedService('scheduler'), tls: joined.tls }));
    const requests = new PushQueue<{ msg: { case: 'heartbeat'; value: object } }>();
    requests.push({ msg: { case: 'heartbeat', value: {} } });
    const noHello = await refusal(
      (async () => {
        for await (const _ of asNode.session(requests, { timeoutMs: 0 })) break;
      })(),
    );
    expect(noHello.code).toBe(Code.FailedPrecondition);
    requests.close();

    const options = { nodeId: joined.nodeId, tls: joined.tls, schedulerUrls: [harness.url], capacity, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS };
    const first = new FakeNode(options);
    const second = new FakeNode(options);
    try {
      const from = harness.events.events.length;
      first.start();
      await harness.events.waitFor((e) => e.nodeId === joined.nodeId && e.detail.case === 'nodeState', 10_000, 'first session', from);
      second.start();
      const replaced = await first.waitFor(() => first.lastError, 10_000, 'the first session to end');
      expect(replaced.code).toBe(Code.Aborted);
      expect(replaced.rawMessage).toMatch(/replaced by a newer session/);
      expect(second.connectedUrl).toBe(harness.url);
    } finally {
      await first.stop();
      await second.stop();
    }
  });
});
