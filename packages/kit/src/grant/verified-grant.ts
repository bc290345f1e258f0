/** The claims of a grant whose signature, validity window and node were checked. */
export interface VerifiedGrant {
  readonly instanceId: string;
  readonly app: string;
  readonly nodeId: string;
  readonly secretNames: readonly string[];
  readonly imageDigest: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** The id of the key that signed it. */
  readonly keyId: string;
}
