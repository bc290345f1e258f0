import { ImageFormatError } from './errors.js';

/**
 * Small hand-written JSON validation: each accessor names the full path of
 * the offending field (e.g. `manifest.layers[2].digest`) in its error.
 */
export class JsonObject {
  private constructor(
    private readonly value: Record<string, unknown>,
    readonly where: string,
  ) {}

  static from(value: unknown, where: string): JsonObject {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ImageFormatError(`${where}: expected a JSON object`);
    }
    return new JsonObject(value as Record<string, unknown>, where);
  }

  has(key: string): boolean {
    return this.value[key] !== undefined && this.value[key] !== null;
  }

  string(key: string): string {
    const v = this.value[key];
    if (typeof v !== 'string') throw this.fail(key, 'a string');
    return v;
  }

  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : undefined;
  }

  integer(key: string): number {
    const v = this.value[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw this.fail(key, 'a non-negative integer');
    return v;
  }

  optionalInteger(key: string): number | undefined {
    return this.has(key) ? this.integer(key) : undefined;
  }

  object(key: string): JsonObject {
    return JsonObject.from(this.value[key], this.path(key));
  }

  optionalObject(key: string): JsonObject | undefined {
    return this.has(key) ? this.object(key) : undefined;
  }

  objects(key: string): JsonObject[] {
    return this.array(key).map((v, i) => JsonObject.from(v, `${this.path(key)}[${i}]`));
  }

  optionalObjects(key: string): JsonObject[] {
    return this.has(key) ? this.objects(key) : [];
  }

  strings(key: string): string[] {
    return this.array(key).map((v, i) => {
      if (typeof v !== 'string') throw new ImageFormatError(`${this.path(key)}[${i}]: expected a string`);
      return v;
    });
  }

  optionalStrings(key: string): string[] {
    return this.has(key) ? this.strings(key) : [];
  }

  /** A `{ "k": "v" }` map. */
  stringMap(key: string): Record<string, string> {
    const obj = this.object(key);
    const out: Record<string, string> = {};
    for (const k of obj.keys()) out[k] = obj.string(k);
    return out;
  }

  optionalStringMap(key: string): Record<string, string> {
    return this.has(key) ? this.stringMap(key) : {};
  }

  keys(): string[] {
    return Object.keys(this.value);
  }

  path(key: string): string {
    return `${this.where}.${key}`;
  }

  private array(key: string): unknown[] {
    const v = this.value[key];
    if (!Array.isArray(v)) throw this.fail(key, 'an array');
    return v;
  }

  private fail(key: string, expected: string): ImageFormatError {
    const v = this.value[key];
    const got = v === undefined ? 'missing' : `got ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v}`;
    return new ImageFormatError(`${this.path(key)}: expected ${expected}, ${got}`);
  }
}

/** Parses UTF-8 JSON, naming `what` in the error. */
export function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new ImageFormatError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}
