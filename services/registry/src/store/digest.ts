import { createHash } from 'node:crypto';
import { InvalidDigestError } from './errors.js';

/** The only digest form the store accepts: lowercase sha256, 64 hex digits. */
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: string): boolean {
  return SHA256_DIGEST.test(value);
}

/**
 * Checks a digest string strictly and returns its hex part. Everything that
 * turns a digest into a path goes through here, so a digest can never carry
 * `/`, `..` or another algorithm into the file system.
 */
export function digestHex(digest: string): string {
  if (!isDigest(digest)) throw new InvalidDigestError(digest);
  return digest.slice('sha256:'.length);
}

export function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
