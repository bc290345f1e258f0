import type { VerifiedGrant } from './verified-grant.js';

/** Why a grant was refused; stable codes for audit entries and metrics. */
export type GrantErrorReason =
  | 'missing'
  | 'malformed'
  | 'unknown-key'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-audience'
  | 'wrong-node'
  | 'wrong-image';

/**
 * A grant was refused. The message names what is wrong and what to check;
 * it never contains key material. Every reason means "deny" (services map it
 * to PERMISSION_DENIED).
 */
export class GrantError extends Error {
  override readonly name = 'GrantError';
  readonly reason: GrantErrorReason;
  /**
   * The authenticated claims, present only when the signature was valid and
   * a later check (time, node, image) failed: lets the caller audit which
   * instance was refused without trusting unauthenticated bytes.
   */
  readonly grant: VerifiedGrant | undefined;

  constructor(reason: GrantErrorReason, message: string, grant?: VerifiedGrant) {
    super(message);
    this.reason = reason;
    this.grant = grant;
  }
}
