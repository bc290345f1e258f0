import { fromBinary } from '@bufbuild/protobuf';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { GrantClaimsSchema } from '@shellwego/contracts/common/v1/grant_pb';
import { GrantError } from './grant-error.js';
import { ROOTFS_SHA256_PATTERN } from './grant-limits.js';

/**
 * The root filesystem sha256 a registry grant pins, read by the grant's
 * holder: the node agent received it from the scheduler over its pinned
 * Session, so it reads the claims without checking the signature (the
 * registry does that). Throws GrantError (malformed) when the claims cannot
 * be read or pin no sha256, so a node never falls back to the registry's word.
 */
export function pinnedRootfsSha256(grant: Grant): string {
  let sha256: string;
  try {
    sha256 = fromBinary(GrantClaimsSchema, grant.claims).rootfsSha256;
  } catch {
    throw new GrantError('malformed', 'the rootfs grant claims are not a valid GrantClaims message');
  }
  if (sha256 === '') {
    throw new GrantError(
      'malformed',
      'the rootfs grant pins no root filesystem sha256 (its app version was deployed before the scheduler recorded one); deploy the app again',
    );
  }
  if (!ROOTFS_SHA256_PATTERN.test(sha256)) throw new GrantError('malformed', 'the rootfs grant pins a sha256 that is not sha256:<64 lowercase hex>');
  return sha256;
}
