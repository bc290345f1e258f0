import { verify } from 'node:crypto';
import { fromBinary } from '@bufbuild/protobuf';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { Grant, GrantClaims } from '@shellwego/contracts/common/v1/grant_pb';
import { GrantAudience, GrantClaimsSchema } from '@shellwego/contracts/common/v1/grant_pb';
import { GrantError } from './grant-error.js';
import { DEFAULT_GRANT_CLOCK_SKEW_MS, IMAGE_DIGEST_PATTERN, MAX_GRANT_TTL_MS, ROOTFS_SHA256_PATTERN } from './grant-limits.js';
import type { GrantVerifier } from './grant-verifier.js';
import type { GrantAudienceName, VerifiedGrant } from './verified-grant.js';

const ED25519_SIGNATURE_BYTES = 64;

/** What the verifier knows independently of the grant. */
export interface GrantExpectations {
  /** The verifying service: a grant for any other audience is refused. */
  readonly audience: GrantAudienceName;
  /** The node id from the caller's certificate. */
  readonly nodeId: string;
  /** When given, the grant must name exactly this image digest. */
  readonly imageDigest?: string;
  readonly now?: Date;
  /** Tolerated clock difference on issued_at (default 30 s). Expiry is strict. */
  readonly clockSkewMs?: number;
}

/**
 * Checks a grant and returns its claims, or throws GrantError. Order: shape,
 * key, signature (before the claims are parsed, so unauthenticated bytes are
 * never interpreted), claim shape and lifetime, validity window, audience,
 * node, image.
 */
export function verifyGrant(grant: Grant | undefined, keys: GrantVerifier, expect: GrantExpectations): VerifiedGrant {
  if (grant === undefined) {
    throw new GrantError('missing', 'no grant was sent; the node agent must pass the grant it received with the assignment');
  }
  if (grant.signature.length === 0) {
    throw new GrantError('bad-signature', 'the grant is unsigned; only grants signed by the scheduler are accepted');
  }
  if (grant.signature.length !== ED25519_SIGNATURE_BYTES) {
    throw new GrantError('malformed', `the grant signature is ${grant.signature.length} bytes; an Ed25519 signature is ${ED25519_SIGNATURE_BYTES}`);
  }
  if (grant.claims.length === 0) {
    throw new GrantError('malformed', 'the grant carries no claims');
  }
  const publicKey = keys.keys.get(grant.keyId);
  if (publicKey === undefined) {
    const trusted = [...keys.keys.keys()].join(', ');
    const named = grant.keyId === '' ? 'names no signing key' : `was signed with key ${grant.keyId}`;
    throw new GrantError(
      'unknown-key',
      `the grant ${named}, which is not trusted here (trusted keys: ${trusted}); configure this service with the scheduler's current grant public key`,
    );
  }
  if (!verify(null, grant.claims, publicKey, grant.signature)) {
    throw new GrantError('bad-signature', `the grant signature does not verify under key ${grant.keyId}; the claims were altered or signed by another key`);
  }

  const verified = parseClaims(grant.claims, grant.keyId);
  const now = expect.now ?? new Date();
  const skewMs = expect.clockSkewMs ?? DEFAULT_GRANT_CLOCK_SKEW_MS;
  if (now.getTime() + skewMs < verified.issuedAt.getTime()) {
    throw new GrantError(
      'not-yet-valid',
      `the grant was issued at ${verified.issuedAt.toISOString()}, after this service's time ${now.toISOString()} (beyond the ${skewMs} ms skew allowed); check the clocks of scheduler and secrets hosts (NTP)`,
      verified,
    );
  }
  if (now.getTime() >= verified.expiresAt.getTime()) {
    throw new GrantError(
      'expired',
      `the grant for instance ${verified.instanceId} expired at ${verified.expiresAt.toISOString()}; the node agent must obtain a fresh grant from the scheduler`,
      verified,
    );
  }
  if (verified.audience !== expect.audience) {
    throw new GrantError(
      'wrong-audience',
      `the grant for instance ${verified.instanceId} is for the ${verified.audience} service, not ${expect.audience}; the node agent must show each service the grant issued for it`,
      verified,
    );
  }
  if (verified.nodeId !== expect.nodeId) {
    throw new GrantError(
      'wrong-node',
      `the grant was issued for node ${verified.nodeId}, but the caller is node ${expect.nodeId}; a grant can only be used by the node its instance is placed on`,
      verified,
    );
  }
  if (expect.imageDigest !== undefined && verified.imageDigest !== expect.imageDigest) {
    throw new GrantError('wrong-image', `the grant is for image ${verified.imageDigest}, not ${expect.imageDigest}`, verified);
  }
  return verified;
}

function parseClaims(bytes: Uint8Array, keyId: string): VerifiedGrant {
  let claims: GrantClaims;
  try {
    claims = fromBinary(GrantClaimsSchema, bytes);
  } catch {
    throw new GrantError('malformed', 'the grant claims are not a valid GrantClaims message');
  }
  for (const field of ['instanceId', 'app', 'nodeId'] as const) {
    if (claims[field] === '') throw new GrantError('malformed', `the grant claims have an empty ${field}`);
  }
  if (!IMAGE_DIGEST_PATTERN.test(claims.imageDigest)) {
    throw new GrantError('malformed', 'the grant claims have no valid image digest');
  }
  if (claims.rootfsSha256 !== '' && !ROOTFS_SHA256_PATTERN.test(claims.rootfsSha256)) {
    throw new GrantError('malformed', 'the grant claims have a rootfs sha256 that is not sha256:<64 lowercase hex>');
  }
  const audience = audienceName(claims.audience);
  const issuedAt = claimTime(claims.issuedAt, 'issued_at');
  const expiresAt = claimTime(claims.expiresAt, 'expires_at');
  const ttlMs = expiresAt.getTime() - issuedAt.getTime();
  if (ttlMs <= 0) {
    throw new GrantError('malformed', 'the grant expires before it was issued');
  }
  if (ttlMs > MAX_GRANT_TTL_MS) {
    throw new GrantError('malformed', `the grant lives ${Math.round(ttlMs / 1000)} s, longer than the ${MAX_GRANT_TTL_MS / 1000} s maximum`);
  }
  return {
    audience,
    instanceId: claims.instanceId,
    app: claims.app,
    nodeId: claims.nodeId,
    secretNames: Object.freeze([...claims.secretNames]),
    imageDigest: claims.imageDigest,
    rootfsSha256: claims.rootfsSha256,
    issuedAt,
    expiresAt,
    keyId,
  };
}

function audienceName(audience: GrantAudience): GrantAudienceName {
  switch (audience) {
    case GrantAudience.SECRETS:
      return 'secrets';
    case GrantAudience.REGISTRY:
      return 'registry';
    default:
      throw new GrantError('malformed', 'the grant names no audience; grants from a scheduler older than audiences are refused: let it issue a fresh one');
  }
}

function claimTime(ts: Timestamp | undefined, field: string): Date {
  if (ts === undefined) throw new GrantError('malformed', `the grant claims have no ${field}`);
  const date = timestampDate(ts);
  if (Number.isNaN(date.getTime())) throw new GrantError('malformed', `the grant claims have an out-of-range ${field}`);
  return date;
}
