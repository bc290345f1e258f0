/** The service a grant is for: the only one that accepts it. */
export type GrantAudienceName = 'secrets' | 'registry';

/** The claims of a grant whose signature, validity window, audience and node were checked. */
export interface VerifiedGrant {
  readonly audience: GrantAudienceName;
  readonly instanceId: string;
  readonly app: string;
  readonly nodeId: string;
  readonly secretNames: readonly string[];
  readonly imageDigest: string;
  /** "sha256:<hex>" of the image's root filesystem; empty when the grant pins none. */
  readonly rootfsSha256: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** The id of the key that signed it. */
  readonly keyId: string;
}
