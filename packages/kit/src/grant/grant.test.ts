import { sign } from 'node:crypto';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { GrantAudience, GrantClaimsSchema, GrantSchema } from '@shellwego/contracts/common/v1/grant_pb';
import { describe, expect, it } from 'vitest';
import type { GrantErrorReason } from './grant-error.js';
import { GrantError } from './grant-error.js';
import { generateGrantKeyPair, loadGrantSigningKey } from './grant-keys.js';
import { createGrantVerifier } from './grant-verifier.js';
import { pinnedRootfsSha256 } from './pinned-rootfs.js';
import { signGrant } from './sign-grant.js';
import type { GrantAudienceName } from './verified-grant.js';
import { verifyGrant } from './verify-grant.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const ROOTFS = `sha256:${'ef'.repeat(32)}`;
const pairA = generateGrantKeyPair();
const pairB = generateGrantKeyPair();
const keyA = loadGrantSigningKey(pairA.privateKeyPem);
const keyB = loadGrantSigningKey(pairB.privateKeyPem);
const verifierA = createGrantVerifier([pairA.publicKeyPem]);
const issued = new Date('2030-01-01T00:00:00Z');
const subject = {
  audience: 'secrets' as GrantAudienceName,
  instanceId: 'i-1',
  app: 'shop',
  nodeId: 'n1',
  secretNames: ['DB_PASSWORD', 'API_KEY'],
  imageDigest: DIGEST,
  rootfsSha256: ROOTFS,
};

function grantFor(overrides: Partial<typeof subject> = {}, ttlMs = 60_000): Grant {
  return signGrant({ ...subject, ...overrides, ttlMs }, keyA, issued);
}

function refusal(fn: () => unknown): GrantError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GrantError) return err;
    throw err;
  }
  throw new Error('expected the grant to be refused');
}

function expectRefused(fn: () => unknown, reason: GrantErrorReason): GrantError {
  const err = refusal(fn);
  expect(err.reason).toBe(reason);
  return err;
}

/** Signs arbitrary claim bytes with key A, bypassing signGrant's checks. */
function signedRaw(claims: Uint8Array): Grant {
  return create(GrantSchema, { claims, signature: sign(null, claims, keyA.privateKey), keyId: keyA.keyId });
}

const at = (offsetMs: number): Date => new Date(issued.getTime() + offsetMs);

describe('signGrant / verifyGrant', () => {
  it('round-trips the claims', () => {
    const grant = grantFor();
    expect(grant.keyId).toBe(pairA.keyId);
    expect(grant.signature).toHaveLength(64);
    const v = verifyGrant(grant, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1000), imageDigest: DIGEST });
    expect(v).toEqual({ ...subject, issuedAt: issued, expiresAt: at(60_000), keyId: pairA.keyId });
  });

  it('signs exactly the claim bytes it carries', () => {
    const grant = grantFor();
    const claims = fromBinary(GrantClaimsSchema, grant.claims);
    expect(claims.nodeId).toBe('n1');
    expect(toBinary(GrantClaimsSchema, claims)).toEqual(grant.claims);
  });

  it('accepts an absolute expiry', () => {
    const grant = signGrant({ ...subject, expiresAt: at(5000) }, keyA, issued);
    expect(verifyGrant(grant, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(4999) }).expiresAt).toEqual(at(5000));
  });

  it('refuses a missing grant', () => {
    expectRefused(() => verifyGrant(undefined, verifierA, { audience: 'secrets', nodeId: 'n1', now: issued }), 'missing');
  });

  it('refuses a grant with any claims byte flipped', () => {
    const grant = grantFor();
    for (let i = 0; i < grant.claims.length; i++) {
      const claims = Uint8Array.from(grant.claims);
      claims[i] = (claims[i] ?? 0) ^ 0x01;
      const tampered = create(GrantSchema, { ...grant, claims });
      expectRefused(() => verifyGrant(tampered, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1) }), 'bad-signature');
    }
  });

  it('refuses a tampered signature', () => {
    const grant = grantFor();
    const signature = Uint8Array.from(grant.signature);
    signature[10] = (signature[10] ?? 0) ^ 0x80;
    const err = expectRefused(
      () => verifyGrant(create(GrantSchema, { ...grant, signature }), verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1) }),
      'bad-signature',
    );
    expect(err.grant).toBeUndefined();
  });

  it('refuses an unsigned grant and a truncated signature', () => {
    const grant = grantFor();
    const unsigned = create(GrantSchema, { claims: grant.claims, keyId: grant.keyId });
    expect(expectRefused(() => verifyGrant(unsigned, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1) }), 'bad-signature').message).toMatch(
      /unsigned/,
    );
    const short = create(GrantSchema, { ...grant, signature: grant.signature.subarray(0, 63) });
    expectRefused(() => verifyGrant(short, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1) }), 'malformed');
  });

  it('refuses a grant signed by an untrusted key, and one claiming a trusted key id', () => {
    const other = signGrant({ ...subject, ttlMs: 60_000 }, keyB, issued);
    const err = expectRefused(() => verifyGrant(other, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1) }), 'unknown-key');
    expect(err.message).toContain(keyB.keyId);
    expect(err.message).toContain(keyA.keyId);
    const forged = create(GrantSchema, { ...other, keyId: keyA.keyId });
    expectRefused(() => verifyGrant(forged, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1) }), 'bad-signature');
    const noKeyId = create(GrantSchema, { ...grantFor(), keyId: '' });
    expectRefused(() => verifyGrant(noKeyId, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1) }), 'unknown-key');
  });

  it('accepts grants from every key of a rollover verifier', () => {
    const both = createGrantVerifier([pairA.publicKeyPem, pairB.publicKeyPem]);
    const fromB = signGrant({ ...subject, ttlMs: 60_000 }, keyB, issued);
    expect(verifyGrant(fromB, both, { audience: 'secrets', nodeId: 'n1', now: at(1) }).keyId).toBe(keyB.keyId);
    expect(verifyGrant(grantFor(), both, { audience: 'secrets', nodeId: 'n1', now: at(1) }).keyId).toBe(keyA.keyId);
  });

  it('refuses an expired grant at the expiry instant, with the claims for the audit', () => {
    const grant = grantFor({}, 60_000);
    expect(verifyGrant(grant, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(59_999) }).instanceId).toBe('i-1');
    const err = expectRefused(() => verifyGrant(grant, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(60_000) }), 'expired');
    expect(err.grant?.instanceId).toBe('i-1');
  });

  it('tolerates clock skew on issued_at only within the configured bound', () => {
    const grant = grantFor();
    expect(verifyGrant(grant, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(-30_000) }).app).toBe('shop');
    expectRefused(() => verifyGrant(grant, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(-30_001) }), 'not-yet-valid');
    expectRefused(() => verifyGrant(grant, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(-2_000), clockSkewMs: 1_000 }), 'not-yet-valid');
  });

  it('refuses a grant shown by another node', () => {
    const err = expectRefused(() => verifyGrant(grantFor(), verifierA, { audience: 'secrets', nodeId: 'n2', now: at(1) }), 'wrong-node');
    expect(err.message).toMatch(/issued for node n1, but the caller is node n2/);
  });

  it('refuses a grant issued for the other audience, either way', () => {
    const registryGrant = grantFor({ audience: 'registry' });
    const err = expectRefused(() => verifyGrant(registryGrant, verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1) }), 'wrong-audience');
    expect(err.message).toMatch(/is for the registry service, not secrets/);
    expect(err.grant?.instanceId).toBe('i-1');
    expectRefused(() => verifyGrant(grantFor(), verifierA, { audience: 'registry', nodeId: 'n1', now: at(1), imageDigest: DIGEST }), 'wrong-audience');
    expect(verifyGrant(registryGrant, verifierA, { audience: 'registry', nodeId: 'n1', now: at(1), imageDigest: DIGEST }).audience).toBe('registry');
  });

  it('refuses a grant for another image when the image is checked', () => {
    const other = `sha256:${'cd'.repeat(32)}`;
    expectRefused(() => verifyGrant(grantFor(), verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1), imageDigest: other }), 'wrong-image');
  });

  it('refuses signed bytes that are not GrantClaims', () => {
    const garbage = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expectRefused(() => verifyGrant(signedRaw(garbage), verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1) }), 'malformed');
  });

  it('refuses signed claims without required fields or with an over-long lifetime', () => {
    const base = {
      ...subject,
      audience: GrantAudience.SECRETS,
      secretNames: [...subject.secretNames],
      issuedAt: timestampFromDate(issued),
      expiresAt: timestampFromDate(at(60_000)),
    };
    const variants = [
      { ...base, nodeId: '' },
      { ...base, instanceId: '' },
      { ...base, imageDigest: '' },
      { ...base, rootfsSha256: 'sha256:ABC' },
      { ...base, issuedAt: undefined },
      { ...base, expiresAt: undefined },
      { ...base, expiresAt: timestampFromDate(at(-1)) },
      { ...base, expiresAt: timestampFromDate(at(10 * 60 * 1000 + 1000)) },
      // From a scheduler that did not name audiences: usable anywhere, so refused everywhere.
      { ...base, audience: GrantAudience.UNSPECIFIED },
    ];
    for (const claims of variants) {
      const bytes = toBinary(GrantClaimsSchema, create(GrantClaimsSchema, claims));
      expectRefused(() => verifyGrant(signedRaw(bytes), verifierA, { audience: 'secrets', nodeId: 'n1', now: at(1) }), 'malformed');
    }
  });

  it('refuses to sign grants a verifier would refuse', () => {
    expect(() => signGrant({ ...subject, ttlMs: 0 }, keyA)).toThrow(RangeError);
    expect(() => signGrant({ ...subject, ttlMs: 10 * 60 * 1000 + 1 }, keyA)).toThrow(RangeError);
    expect(() => signGrant({ ...subject, nodeId: '', ttlMs: 1000 }, keyA)).toThrow(/nodeId/);
    expect(() => signGrant({ ...subject, imageDigest: 'latest', ttlMs: 1000 }, keyA)).toThrow(/digest/);
    expect(() => signGrant({ ...subject, rootfsSha256: 'sha256:abc', ttlMs: 1000 }, keyA)).toThrow(/rootfs/);
  });
});

describe('pinnedRootfsSha256', () => {
  it("reads the rootfs sha256 a grant pins, for the grant's holder", () => {
    expect(pinnedRootfsSha256(grantFor({ audience: 'registry' }))).toBe(ROOTFS);
  });

  it('refuses a grant pinning none, so the holder never falls back to the registry trailer', () => {
    const { rootfsSha256: _, ...unpinned } = subject;
    const err = refusal(() => pinnedRootfsSha256(signGrant({ ...unpinned, ttlMs: 1000 }, keyA)));
    expect(err.reason).toBe('malformed');
    expect(err.message).toMatch(/pins no root filesystem sha256/);
    expectRefused(() => pinnedRootfsSha256(signedRaw(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f]))), 'malformed');
  });
});
