import { randomBytes } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { SecretScopeKind } from '@shellwego/contracts/secrets/v1/secrets_pb';
import type { Principal } from '@shellwego/kit/pki';
import { SecretBytes } from '@shellwego/kit/secret-bytes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretsHarness } from '../test/support/secrets-harness.js';
import type { SecretRelease } from './resolve-secrets.js';
import { respondThenWipe } from './resolve-secrets.js';

const NODE: Principal = { kind: 'node', id: 'n1' };

describe('ResolveSecrets wipes the released values', () => {
  let harness: SecretsHarness;
  beforeAll(async () => {
    harness = await SecretsHarness.open();
  });
  afterAll(() => harness.close());

  it('zeroes every value buffer once the response has been sent, and the caller still got the values', async () => {
    const values = [randomBytes(32), randomBytes(1000), randomBytes(7)];
    const names = ['A', 'B', 'C'];
    for (const [i, name] of names.entries()) {
      await harness.client().setSecret({ scope: { kind: SecretScopeKind.APP, app: 'shop' }, name, value: Buffer.from(values[i] ?? []) });
    }
    const resolver = harness.domain.resolver;
    const original = resolver.resolve.bind(resolver);
    const released: Array<{ release: SecretRelease; buffers: Uint8Array[] }> = [];
    resolver.resolve = async (caller, grant) => {
      const release = await original(caller, grant);
      released.push({ release, buffers: release.secrets.map((s) => s.value.reveal()) });
      return release;
    };
    try {
      const response = await harness.client(NODE).resolveSecrets({ grant: harness.grant({ nodeId: 'n1', app: 'shop', secretNames: names }) });
      expect(response.secrets.map((s) => Buffer.from(s.value).toString('hex'))).toEqual(values.map((v) => v.toString('hex')));
      expect(released).toHaveLength(1);
      const [{ release, buffers }] = released as [(typeof released)[number]];
      expect(release.secrets.every((s) => s.value.isWiped)).toBe(true);
      for (const buffer of buffers) {
        expect(buffer.byteLength).toBeGreaterThan(0);
        expect(buffer.every((byte) => byte === 0)).toBe(true);
      }
    } finally {
      resolver.resolve = original;
    }
  });

  it('wipes at once and answers CANCELED when the call already ended', () => {
    const value = SecretBytes.copyOf(Buffer.from('not for anyone'));
    const release: SecretRelease = {
      instanceId: 'i-1',
      secrets: [{ name: 'A', version: 1, scope: { kind: 'workspace' }, value }],
      wipe: () => value.wipe(),
    };
    const ended = new AbortController();
    ended.abort();
    let error: unknown;
    try {
      respondThenWipe(release, ended.signal);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Canceled);
    expect(value.isWiped).toBe(true);
  });

  it('references the values without copying until the call ends', () => {
    const value = SecretBytes.copyOf(Buffer.from('live'));
    const live = value.reveal();
    const release: SecretRelease = { instanceId: 'i', secrets: [{ name: 'A', version: 2, scope: { kind: 'workspace' }, value }], wipe: () => value.wipe() };
    const call = new AbortController();
    const response = respondThenWipe(release, call.signal);
    expect(response.secrets[0]?.value).toBe(live);
    expect(value.isWiped).toBe(false);
    call.abort();
    expect(value.isWiped).toBe(true);
    expect(live.every((byte) => byte === 0)).toBe(true);
  });
});
