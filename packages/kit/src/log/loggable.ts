// Turns a value about to be logged into one that cannot print secret or raw bytes.
import { stdSerializers } from 'pino';
import { REDACTED_SECRET, SecretBytes } from '../secret-bytes/secret-bytes.js';

// Deeper than any structure worth logging; a bound keeps a hostile object from costing much.
const MAX_DEPTH = 8;

export function describeBytes(byteLength: number): string {
  return `[${byteLength} bytes]`;
}

/**
 * Replaces SecretBytes with the redaction marker and binary data (Buffer, any typed array,
 * ArrayBuffer) with "[N bytes]", at any depth. Errors become pino's serialized form first so
 * their own properties are covered too. Returns the input itself when nothing needed changing.
 */
export function toLoggable(value: unknown): unknown {
  return walk(value, 0, new Set());
}

function walk(value: unknown, depth: number, path: Set<object>): unknown {
  if (value === null || typeof value !== 'object') {
    return value;
  }
  if (value instanceof SecretBytes) {
    return REDACTED_SECRET;
  }
  if (ArrayBuffer.isView(value)) {
    return describeBytes(value.byteLength);
  }
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    return describeBytes(value.byteLength);
  }
  if (path.has(value)) {
    return '[Circular]';
  }
  if (depth >= MAX_DEPTH) {
    return '[nested too deep]';
  }
  if (value instanceof Error) {
    return walkRecord(stdSerializers.err(value), depth, path, true);
  }
  if (Array.isArray(value)) {
    path.add(value);
    let changed = false;
    const out = value.map((item: unknown) => {
      const next = walk(item, depth + 1, path);
      changed ||= next !== item;
      return next;
    });
    path.delete(value);
    return changed ? out : value;
  }
  // Objects that serialize themselves (Date, URL, ...) are left to their toJSON.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return value;
  }
  return walkRecord(value, depth, path, false);
}

function walkRecord(value: object, depth: number, path: Set<object>, alwaysCopy: boolean): unknown {
  path.add(value);
  let changed = alwaysCopy;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const next = walk(item, depth + 1, path);
    changed ||= next !== item;
    out[key] = next;
  }
  path.delete(value);
  return changed ? out : value;
}
