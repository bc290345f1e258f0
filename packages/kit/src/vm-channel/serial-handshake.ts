// The line handshake that starts every HTTP/2 session on a virtio-serial port.
//
// A serial port has no connections: it is one byte pipe that stays open while the host end
// comes and goes, and bytes written for an earlier host can still arrive after a new one
// connected. So each host connection opens with HELLO lines carrying fresh nonces; the guest
// answers every HELLO with a READY line carrying the same nonce and then waits for the HTTP/2
// client preface. The host drops every byte before the READY for the last HELLO it sent, so
// stale output of an earlier session can never be taken for the new one.
import { randomBytes } from 'node:crypto';

export const HELLO_PREFIX = Buffer.from('SHELLWEGO-HELLO v1 ', 'latin1');
export const READY_PREFIX = Buffer.from('SHELLWEGO-READY v1 ', 'latin1');
export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const NONCE_PATTERN = /^[0-9a-f]{32}$/;
// Prefix + 32 hex digits + newline, with room to spare: a longer "line" is not a handshake line.
const MAX_LINE_BYTES = 96;

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

export function helloLine(nonce: string): Buffer {
  return Buffer.from(`${HELLO_PREFIX.toString('latin1')}${nonce}\n`, 'latin1');
}

export function readyLine(nonce: string): Buffer {
  return Buffer.from(`${READY_PREFIX.toString('latin1')}${nonce}\n`, 'latin1');
}

export type LineScan =
  /** A complete line at [start, end) (end is past the newline) with a well-formed nonce. */
  | { readonly kind: 'found'; readonly start: number; readonly end: number; readonly nonce: string }
  /** A line may begin at start but is not complete yet: keep buf from start and read on. */
  | { readonly kind: 'partial'; readonly start: number }
  /** No line here and none can begin in these bytes: they can all be dropped. */
  | { readonly kind: 'none' };

/** Finds the first `<prefix><nonce>\n` line in buf, skipping anything malformed. */
export function scanLine(buf: Buffer, prefix: Buffer): LineScan {
  let from = 0;
  for (;;) {
    const start = buf.indexOf(prefix, from);
    if (start < 0) {
      return partialPrefixAtEnd(buf, prefix, from);
    }
    const newline = buf.indexOf(0x0a, start + prefix.length);
    if (newline < 0) {
      if (buf.length - start <= MAX_LINE_BYTES) {
        return { kind: 'partial', start };
      }
      from = start + 1;
      continue;
    }
    const nonce = buf.toString('latin1', start + prefix.length, newline);
    if (NONCE_PATTERN.test(nonce)) {
      return { kind: 'found', start, end: newline + 1, nonce };
    }
    from = start + 1;
  }
}

/** True when buf is a prefix of full, or full is a prefix of buf. */
export function startsCompatibly(buf: Buffer, full: Buffer): boolean {
  const n = Math.min(buf.length, full.length);
  return buf.subarray(0, n).equals(full.subarray(0, n));
}

// The tail of buf may be the first bytes of a prefix that the next read completes.
function partialPrefixAtEnd(buf: Buffer, prefix: Buffer, from: number): LineScan {
  const longest = Math.min(prefix.length - 1, buf.length - from);
  for (let length = longest; length > 0; length--) {
    const start = buf.length - length;
    if (buf.subarray(start).equals(prefix.subarray(0, length))) {
      return { kind: 'partial', start };
    }
  }
  return { kind: 'none' };
}
