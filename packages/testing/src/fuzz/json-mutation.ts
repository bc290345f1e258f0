// Mutations of valid JSON documents for fuzzing parsers of untrusted JSON (OCI manifests,
// configs, archive metadata): a valid document with a few values replaced by hostile ones, keys
// removed, or keys added, so that inputs get past the first checks and reach the deep ones.
import fc from 'fast-check';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path (as keys) to a value inside `doc`, the root included. */
function pathsOf(doc: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const here = [prefix];
  if (Array.isArray(doc)) return [...here, ...doc.flatMap((v, i) => pathsOf(v, [...prefix, i]))];
  if (doc !== null && typeof doc === 'object') return [...here, ...Object.entries(doc).flatMap(([k, v]) => pathsOf(v, [...prefix, k]))];
  return here;
}

/**
 * Values that break assumptions: arbitrary JSON, negative and unsafe numbers, empty and
 * look-alike strings, NUL, `__proto__`, and long arrays. (Deeply nested values are best fed as
 * text: fast-check's own printing of them recurses too deep.)
 */
export const hostileJson: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue() as fc.Arbitrary<Json>,
  fc.constantFrom<Json>(
    -1,
    2 ** 53,
    1e308,
    0.5,
    '',
    'sha256:',
    `sha256:${'A'.repeat(64)}`,
    `sha512:${'a'.repeat(128)}`,
    '../../etc/passwd',
    '/etc/passwd',
    '\u0000',
    '__proto__',
  ),
  fc.nat({ max: 2_000 }).map((n): Json => Array.from({ length: n }, () => 0)),
);

/** `valid` with 1-4 mutations; `keys` are the names an added key may take (e.g. the format's own). */
export function mutatedJson(valid: Json, keys: readonly string[]): fc.Arbitrary<Json> {
  const paths = pathsOf(valid);
  const mutation = fc.tuple(fc.constantFrom(...paths), fc.constantFrom('replace', 'remove', 'add'), hostileJson, fc.constantFrom(...keys, '__proto__'));
  return fc.array(mutation, { minLength: 1, maxLength: 4 }).map((mutations) => {
    let doc = structuredClone(valid);
    for (const [path, kind, value, key] of mutations) {
      if (path.length === 0) {
        if (kind === 'replace') doc = value;
        continue;
      }
      const parent = path.slice(0, -1).reduce<Json | undefined>((node, k) => (node as Record<string | number, Json> | undefined)?.[k], doc);
      if (parent === null || typeof parent !== 'object') continue;
      const last = path[path.length - 1] as string | number;
      const slot = parent as Record<string | number, Json>;
      if (kind === 'replace') slot[last] = value;
      else if (kind === 'remove' && !Array.isArray(parent)) delete slot[last];
      // defineProperty, so that "__proto__" becomes an own key as JSON.parse would make it.
      else if (kind === 'add' && !Array.isArray(parent)) Object.defineProperty(slot, key, { value, enumerable: true, configurable: true, writable: true });
    }
    return doc;
  });
}

export const jsonBytes = (doc: Json): Buffer => Buffer.from(JSON.stringify(doc) ?? 'null', 'utf8');
