// Fuzzing grant decoding: a grant is bytes a node agent hands the secrets service and the
// registry. Any change to a signed grant is refused with GrantError, and claims that verify (even
// odd ones a buggy or compromised encoder could sign) are either refused as malformed or come
// back with every invariant the services rely on.

import { sign } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { GrantAudience, GrantClaimsSchema, GrantSchema } from '@shellwego/contracts/common/v1/grant_pb';
import { FUZZ_TIMEOUT_MS, FuzzTally, runFuzz } from '@shellwego/testing/fuzz/fuzz-run';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GrantError } from './grant-error.js';
import { generateGrantKeyPair, loadGrantSigningKey } from './grant-keys.js';
import { IMAGE_DIGEST_PATTERN, MAX_GRANT_TTL_MS, ROOTFS_SHA256_PATTERN } from './grant-limits.js';
import { createGrantVerifier } from './grant-verifier.js';
import { signGrant } from './sign-grant.js';
import { verifyGrant } from './verify-grant.js';

const NOW = new Date('2026-12-04T12:00:00Z');
const pair = generateGrantKeyPair();
const key = loadGrantSigningKey(pair.privateKeyPem);
const verifier = createGrantVerifier([pair.publicKeyPem]);
const expect_ = { audience: 'secrets', nodeId: 'node-1', now: NOW } as const;

const validGrant = signGrant(
  {
    audience: 'secrets',
    instanceId: 'i-1',
    app: 'web',
    nodeId: 'node-1',
    secretNames: ['DB_PASSWORD'],
    imageDigest: `sha256:${'a'.repeat(64)}`,
    rootfsSha256: `sha256:${'b'.repeat(64)}`,
    ttlMs: 60_000,
  },
  key,
  NOW,
);

/** Flips bytes (xor, never a no-op) or cuts or extends a copy. */
function damage(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }).map((flips) => {
      const copy = Uint8Array.from(bytes);
      // Distinct positions, so two flips never cancel out.
      const seen = new Set<number>();
      for (const [at, xor] of flips) {
        const i = at % copy.length;
        if (seen.has(i)) continue;
        seen.add(i);
        copy[i] = (copy[i] ?? 0) ^ xor;
      }
      return copy;
    }),
    fc.nat({ max: bytes.length - 1 }).map((n) => bytes.subarray(0, n)),
    fc.uint8Array({ minLength: 1, maxLength: 32 }).map((extra) => Uint8Array.from([...bytes, ...extra])),
  );
}

function outcome(tally: FuzzTally, run: () => unknown): unknown {
  try {
    const verified = run();
    tally.count('verified');
    return verified;
  } catch (error) {
    if (!(error instanceof GrantError)) throw error;
    tally.count(`refused:${error.reason}`);
    return undefined;
  }
}

// Claims as a signer might encode them, wire-level damage included: empty and odd strings,
// invalid UTF-8, unknown enum values, extreme timestamps, unknown fields.
const text = fc.oneof(fc.constantFrom('', 'node-2', `sha256:${'B'.repeat(64)}`, 'sha256:', '\u0000'), fc.string({ maxLength: 80 }));
/** Mostly the valid value, sometimes a hostile one, so that many claims get through every check. */
const usually = <T>(valid: T, hostile: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.oneof({ weight: 5, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: hostile });
const timestamp = fc.oneof(
  fc.date({ min: new Date('2026-12-04T11:50:00Z'), max: new Date('2026-12-04T12:20:00Z'), noInvalidDate: true }).map((d) => timestampFromDate(d)),
  fc.record({ seconds: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), nanos: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }),
);
const claimsBytes = fc
  .record({
    instanceId: usually('i-1', text),
    app: usually('web', text),
    nodeId: usually('node-1', text),
    secretNames: usually(['DB_PASSWORD'], fc.array(text, { maxLength: 4 })),
    imageDigest: usually(`sha256:${'a'.repeat(64)}`, text),
    rootfsSha256: usually(`sha256:${'b'.repeat(64)}`, text),
    issuedAt: usually(timestampFromDate(new Date(NOW.getTime() - 1000)), fc.option(timestamp, { nil: undefined })),
    expiresAt: usually(timestampFromDate(new Date(NOW.getTime() + 60_000)), fc.option(timestamp, { nil: undefined })),
    audience: usually(GrantAudience.SECRETS, fc.oneof(fc.constantFrom(GrantAudience.REGISTRY, GrantAudience.UNSPECIFIED), fc.integer({ min: -5, max: 1000 }))),
  })
  .map((claims) => toBinary(GrantClaimsSchema, create(GrantClaimsSchema, claims)))
  .chain((bytes) => fc.oneof({ weight: 3, arbitrary: fc.constant(bytes) }, { weight: 1, arbitrary: bytes.length > 0 ? damage(bytes) : fc.constant(bytes) }));

describe('grant decoding under fuzzing', () => {
  it('refuses every changed grant (claims, signature or key id) with GrantError', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const damaged = fc.oneof(
      damage(validGrant.claims).map((claims) => create(GrantSchema, { ...validGrant, claims })),
      damage(validGrant.signature).map((signature) => create(GrantSchema, { ...validGrant, signature })),
      fc
        .string({ maxLength: 40 })
        .filter((id) => id !== validGrant.keyId)
        .map((keyId) => create(GrantSchema, { ...validGrant, keyId })),
    );
    const property = fc.property(damaged, (grant) => {
      expect(outcome(tally, () => verifyGrant(grant, verifier, expect_))).toBeUndefined();
    });
    await runFuzz('grant/tampered', 3000, property, tally);
    expect(tally.get('verified')).toBe(0);
    // The unchanged grant still verifies: the refusals above are about the damage.
    expect(verifyGrant(validGrant, verifier, expect_).instanceId).toBe('i-1');
  });

  it('returns signed claims only when every invariant holds, else refuses them as GrantError', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const property = fc.property(claimsBytes, (claims) => {
      const grant = create(GrantSchema, { claims, signature: sign(null, claims, key.privateKey), keyId: key.keyId });
      const verified = outcome(tally, () => verifyGrant(grant, verifier, expect_)) as ReturnType<typeof verifyGrant> | undefined;
      if (verified === undefined) return;
      expect(verified.audience).toBe('secrets');
      expect(verified.nodeId).toBe('node-1');
      expect(verified.instanceId).not.toBe('');
      expect(verified.app).not.toBe('');
      expect(verified.imageDigest).toMatch(IMAGE_DIGEST_PATTERN);
      if (verified.rootfsSha256 !== '') expect(verified.rootfsSha256).toMatch(ROOTFS_SHA256_PATTERN);
      const ttl = verified.expiresAt.getTime() - verified.issuedAt.getTime();
      expect(ttl > 0 && ttl <= MAX_GRANT_TTL_MS).toBe(true);
      expect(verified.expiresAt.getTime()).toBeGreaterThan(NOW.getTime());
    });
    await runFuzz('grant/signed-claims', 3000, property, tally);
    expect(tally.get('verified')).toBeGreaterThan(20);
    expect(tally.get('refused:malformed')).toBeGreaterThan(100);
  });
});
