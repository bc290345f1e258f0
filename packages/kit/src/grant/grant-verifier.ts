import type { KeyObject } from 'node:crypto';
import { grantKeyId, loadGrantPublicKey } from './grant-keys.js';

/** The public keys a service accepts grants from, by key id. */
export interface GrantVerifier {
  readonly keys: ReadonlyMap<string, KeyObject>;
}

/**
 * Builds a verifier from one or more SPKI PEM public keys. Several keys allow
 * a rollover: configure old and new, switch the signer, then drop the old.
 */
export function createGrantVerifier(publicKeyPems: readonly (string | Uint8Array)[]): GrantVerifier {
  if (publicKeyPems.length === 0) {
    throw new Error("no grant verifying key configured; give the scheduler's grant public key (PEM)");
  }
  const keys = new Map<string, KeyObject>();
  for (const pem of publicKeyPems) {
    const key = loadGrantPublicKey(pem);
    keys.set(grantKeyId(key), key);
  }
  return { keys };
}
