// A secret held as bytes (never a JS string) that redacts itself everywhere it could be printed.
import { timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

export const REDACTED_SECRET = '[SecretBytes redacted]';

export class SecretBytes {
  // Private fields are invisible to util.inspect, structuredClone and JSON enumeration.
  #bytes: Uint8Array;
  #wiped = false;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** Takes ownership of buf without copying: the caller must not use buf afterwards. */
  static adopt(buf: Uint8Array): SecretBytes {
    return new SecretBytes(buf);
  }

  /** Copies buf into memory of its own (not Buffer's shared pool), so wipe() cannot touch other data. */
  static copyOf(buf: Uint8Array): SecretBytes {
    const own = new Uint8Array(buf.byteLength);
    own.set(buf);
    return new SecretBytes(own);
  }

  /** The live bytes (no copy). Writes to it change the secret; wipe() zeroes it. */
  reveal(): Uint8Array {
    if (this.#wiped) {
      throw new Error('SecretBytes: the value was wiped and can no longer be revealed');
    }
    return this.#bytes;
  }

  get byteLength(): number {
    return this.#bytes.byteLength;
  }

  get isWiped(): boolean {
    return this.#wiped;
  }

  wipe(): void {
    this.#bytes.fill(0);
    this.#wiped = true;
  }

  /** Constant-time for equal lengths; only the length is observable through timing. */
  equals(other: SecretBytes): boolean {
    const a = this.reveal();
    const b = other.reveal();
    if (a.byteLength !== b.byteLength) {
      return false;
    }
    return timingSafeEqual(a, b);
  }

  toString(): string {
    return REDACTED_SECRET;
  }

  toJSON(): string {
    return REDACTED_SECRET;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED_SECRET;
  }

  [inspect.custom](): string {
    return REDACTED_SECRET;
  }
}

export function isSecretBytes(value: unknown): value is SecretBytes {
  return value instanceof SecretBytes;
}

/** Wipes every SecretBytes in the given values, arrays, sets and map values. */
export function wipeAll(...items: Array<SecretBytes | Iterable<SecretBytes> | ReadonlyMap<unknown, SecretBytes> | null | undefined>): void {
  for (const item of items) {
    if (item == null) {
      continue;
    }
    if (item instanceof SecretBytes) {
      item.wipe();
    } else if (item instanceof Map) {
      for (const secret of item.values()) {
        secret.wipe();
      }
    } else {
      for (const secret of item as Iterable<SecretBytes>) {
        secret.wipe();
      }
    }
  }
}
