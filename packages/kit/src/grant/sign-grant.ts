import { sign } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { GrantAudience, GrantClaimsSchema, GrantSchema } from '@shellwego/contracts/common/v1/grant_pb';
import type { GrantSigningKey } from './grant-keys.js';
import { IMAGE_DIGEST_PATTERN, MAX_GRANT_TTL_MS, ROOTFS_SHA256_PATTERN } from './grant-limits.js';
import type { GrantAudienceName } from './verified-grant.js';

/** The contract's enum value of each audience. */
export const GRANT_AUDIENCES: Readonly<Record<GrantAudienceName, GrantAudience>> = {
  secrets: GrantAudience.SECRETS,
  registry: GrantAudience.REGISTRY,
};

interface GrantSubject {
  /** The one service that will accept the grant. */
  readonly audience: GrantAudienceName;
  readonly instanceId: string;
  readonly app: string;
  readonly nodeId: string;
  readonly secretNames: readonly string[];
  readonly imageDigest: string;
  /** "sha256:<hex>" of the image's root filesystem, which the node checks its download against. */
  readonly rootfsSha256?: string;
}

/** What to sign: the subject plus either a lifetime or an absolute expiry. */
export type GrantClaimsInput = GrantSubject & ({ readonly ttlMs: number; readonly expiresAt?: never } | { readonly expiresAt: Date; readonly ttlMs?: never });

/**
 * Signs a grant. The claims are serialized once and the signature covers
 * exactly those bytes, which travel as-is, so verifiers never re-encode.
 * Throws a RangeError for claims a verifier would refuse (empty ids, bad
 * digest or rootfs sha256, lifetime not in (0, MAX_GRANT_TTL_MS]): better to fail in the
 * scheduler than to hand a node a grant that cannot work.
 */
export function signGrant(claims: GrantClaimsInput, key: GrantSigningKey, now: Date = new Date()): Grant {
  for (const field of ['instanceId', 'app', 'nodeId'] as const) {
    if (claims[field] === '') throw new RangeError(`cannot sign a grant with an empty ${field}`);
  }
  if (!IMAGE_DIGEST_PATTERN.test(claims.imageDigest)) {
    throw new RangeError(`cannot sign a grant for image digest "${claims.imageDigest}"; expected "sha256:<hex>"`);
  }
  if (claims.rootfsSha256 !== undefined && !ROOTFS_SHA256_PATTERN.test(claims.rootfsSha256)) {
    throw new RangeError(`cannot sign a grant pinning rootfs "${claims.rootfsSha256}"; expected "sha256:<64 lowercase hex>"`);
  }
  const expiresAt = claims.expiresAt ?? new Date(now.getTime() + claims.ttlMs);
  const ttlMs = expiresAt.getTime() - now.getTime();
  if (!(ttlMs > 0 && ttlMs <= MAX_GRANT_TTL_MS)) {
    throw new RangeError(`cannot sign a grant living ${ttlMs} ms; the lifetime must be in (0, ${MAX_GRANT_TTL_MS}] ms`);
  }
  const claimBytes = toBinary(
    GrantClaimsSchema,
    create(GrantClaimsSchema, {
      instanceId: claims.instanceId,
      app: claims.app,
      nodeId: claims.nodeId,
      secretNames: [...claims.secretNames],
      imageDigest: claims.imageDigest,
      rootfsSha256: claims.rootfsSha256 ?? '',
      issuedAt: timestampFromDate(now),
      expiresAt: timestampFromDate(expiresAt),
      audience: GRANT_AUDIENCES[claims.audience],
    }),
  );
  return create(GrantSchema, {
    claims: claimBytes,
    signature: sign(null, claimBytes, key.privateKey),
    keyId: key.keyId,
  });
}
