import type { KeyObject } from 'node:crypto';
import { createHmac } from 'node:crypto';

const KEK_ID_PATTERN = /^k([1-9][0-9]{0,9})-([0-9a-f]{8})$/;

/**
 * Id of master key version `version`: "k<version>-<fingerprint>". The
 * fingerprint (a 32-bit key check value, HMAC-SHA256 of a fixed label) makes
 * a replaced key file show up as "holds a different key" at start-up instead
 * of as authentication failures on every read.
 */
export function kekIdFor(version: number, key: KeyObject): string {
  const fingerprint = createHmac('sha256', key).update('shellwego kek id v1').digest('hex').slice(0, 8);
  return `k${version}-${fingerprint}`;
}

/** The version number of a file-source KEK id, or undefined for other ids. */
export function kekIdVersion(id: string): number | undefined {
  const m = KEK_ID_PATTERN.exec(id);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}
