import { resourceExhausted } from '@shellwego/kit/errors';

/** Largest secret value accepted, in bytes (64 KiB). */
export const MAX_SECRET_VALUE_BYTES = 64 * 1024;

/**
 * Returns `value` or throws RESOURCE_EXHAUSTED. The message gives the size
 * only; the value itself never appears. Empty values are allowed: an empty
 * environment variable is meaningful to some programs.
 */
export function validateSecretValue(value: Uint8Array, field = 'value'): Uint8Array {
  if (value.byteLength > MAX_SECRET_VALUE_BYTES) {
    throw resourceExhausted(
      `${field}: ${value.byteLength} bytes is over the ${MAX_SECRET_VALUE_BYTES}-byte limit for a secret value; store large material elsewhere and keep only its key here`,
    );
  }
  return value;
}
