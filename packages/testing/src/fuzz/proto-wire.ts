// Request bodies for protocol fuzzing, generated from a message's descriptor: fields of the right
// wire type with boundary values, plausible words, invalid UTF-8, unknown enum numbers, long
// repeated fields and nested messages; then, for some, damaged at the wire level (cut short, a
// byte flipped, a field with the wrong or an invalid wire type, unknown fields, deep nesting).
import { type DescField, type DescMessage, ScalarType } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';

type Write = (w: BinaryWriter) => void;

/** Words that pass the services' first checks often enough to reach deeper code. */
const PLAUSIBLE = [
  'web',
  'default',
  'admin',
  'node-1',
  'busybox',
  'busybox:latest',
  'DB_PASSWORD',
  '1Gi',
  '250m',
  '/bin/sh',
  'linux/amd64',
  `sha256:${'a'.repeat(64)}`,
];
const INVALID_UTF8 = [Uint8Array.of(0xff), Uint8Array.of(0xc3, 0x28), Uint8Array.of(0xed, 0xa0, 0x80), Uint8Array.of(0xf8, 0x88, 0x80, 0x80, 0x80)];

const int32 = fc.oneof(fc.constantFrom(0, 1, -1, 2 ** 31 - 1, -(2 ** 31)), fc.integer());
const uint32 = fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1), fc.nat({ max: 2 ** 32 - 1 }));
const int64 = fc.oneof(fc.constantFrom(0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n)), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
const uint64 = fc.oneof(fc.constantFrom(0n, 1n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
const double = fc.oneof(fc.constantFrom(0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e308, 5e-324), fc.double());
const text: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...PLAUSIBLE).map((s) => new TextEncoder().encode(s)) },
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }).map((s) => new TextEncoder().encode(s)) },
  { weight: 1, arbitrary: fc.constantFrom(...INVALID_UTF8) },
  { weight: 1, arbitrary: fc.nat({ max: 70_000 }).map((n) => new TextEncoder().encode('x'.repeat(n))) },
);
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.nat({ max: 200_000 }).map((n) => new Uint8Array(n)),
);

/** One value of a scalar type, tagged with `no` (or written bare for map keys and packed lists when `no` is undefined). */
function scalar(type: ScalarType, no: number): fc.Arbitrary<Write> {
  switch (type) {
    case ScalarType.INT32:
      return int32.map((v) => (w) => w.tag(no, WireType.Varint).int32(v));
    case ScalarType.SINT32:
      return int32.map((v) => (w) => w.tag(no, WireType.Varint).sint32(v));
    case ScalarType.UINT32:
      return uint32.map((v) => (w) => w.tag(no, WireType.Varint).uint32(v));
    case ScalarType.INT64:
      return int64.map((v) => (w) => w.tag(no, WireType.Varint).int64(v));
    case ScalarType.SINT64:
      return int64.map((v) => (w) => w.tag(no, WireType.Varint).sint64(v));
    case ScalarType.UINT64:
      return uint64.map((v) => (w) => w.tag(no, WireType.Varint).uint64(v));
    case ScalarType.FIXED32:
      return uint32.map((v) => (w) => w.tag(no, WireType.Bit32).fixed32(v));
    case ScalarType.SFIXED32:
      return int32.map((v) => (w) => w.tag(no, WireType.Bit32).sfixed32(v));
    case ScalarType.FIXED64:
      return uint64.map((v) => (w) => w.tag(no, WireType.Bit64).fixed64(v));
    case ScalarType.SFIXED64:
      return int64.map((v) => (w) => w.tag(no, WireType.Bit64).sfixed64(v));
    case ScalarType.FLOAT:
      return double.map((v) => (w) => w.tag(no, WireType.Bit32).float(v));
    case ScalarType.DOUBLE:
      return double.map((v) => (w) => w.tag(no, WireType.Bit64).double(v));
    // 2 is not a valid bool on the wire; decoders must still cope.
    case ScalarType.BOOL:
      return fc.constantFrom(0, 1, 2).map((v) => (w) => w.tag(no, WireType.Varint).uint32(v));
    case ScalarType.STRING:
      return text.map((v) => (w) => w.tag(no, WireType.LengthDelimited).bytes(v));
    case ScalarType.BYTES:
      return bytes.map((v) => (w) => w.tag(no, WireType.LengthDelimited).bytes(v));
  }
}

/** An enum value: a declared number, or one the contract does not know. */
function enumValue(numbers: readonly number[], no: number): fc.Arbitrary<Write> {
  return fc.oneof(fc.constantFrom(...numbers), fc.constantFrom(-1, 999, 2 ** 31 - 1)).map((v) => (w) => w.tag(no, WireType.Varint).int32(v));
}

function embedded(message: DescMessage, no: number, depth: number): fc.Arbitrary<Write> {
  return messageBytes(message, depth + 1).map((body) => (w) => w.tag(no, WireType.LengthDelimited).bytes(body));
}

/** One occurrence of a field (an element, for lists; an entry, for maps). */
function occurrence(field: DescField, depth: number): fc.Arbitrary<Write> {
  const no = field.number;
  switch (field.fieldKind) {
    case 'scalar':
      return scalar(field.scalar, no);
    case 'enum':
      return enumValue(
        field.enum.values.map((v) => v.number),
        no,
      );
    case 'message':
      return embedded(field.message, no, depth);
    case 'list':
      if (field.listKind === 'scalar') return scalar(field.scalar, no);
      if (field.listKind === 'enum')
        return enumValue(
          field.enum.values.map((v) => v.number),
          no,
        );
      return embedded(field.message, no, depth);
    case 'map': {
      const key = scalar(field.mapKey, 1);
      const value =
        field.mapKind === 'scalar'
          ? scalar(field.scalar, 2)
          : field.mapKind === 'enum'
            ? enumValue(
                field.enum.values.map((v) => v.number),
                2,
              )
            : embedded(field.message, 2, depth);
      return fc.tuple(key, value).map(([k, v]) => (w) => {
        const entry = new BinaryWriter();
        k(entry);
        v(entry);
        w.tag(no, WireType.LengthDelimited).bytes(entry.finish());
      });
    }
  }
}

/** A field's occurrences: none, one, a few, or (for repeated fields, rarely) thousands. */
function occurrences(field: DescField, depth: number): fc.Arbitrary<Write[]> {
  const one = occurrence(field, depth);
  if (field.fieldKind !== 'list' && field.fieldKind !== 'map') return fc.option(one, { nil: undefined, freq: 2 }).map((w) => (w ? [w] : []));
  return fc.oneof(
    { weight: 8, arbitrary: fc.array(one, { maxLength: 3 }) },
    { weight: 1, arbitrary: fc.tuple(one, fc.integer({ min: 1_000, max: 20_000 })).map(([w, n]) => Array.from({ length: n }, () => w)) },
  );
}

/** The encoded bytes of a message generated field by field from its descriptor (depth-limited). */
export function messageBytes(message: DescMessage, depth = 0): fc.Arbitrary<Uint8Array> {
  if (depth > 3) return fc.constant(new Uint8Array());
  const fields = message.fields.map((f) => occurrences(f, depth));
  return fc.tuple(...fields).map((writes) => {
    const w = new BinaryWriter();
    for (const field of writes) for (const write of field) write(w);
    return w.finish();
  });
}

/** Wire-level damage to an encoded message. */
function damaged(body: Uint8Array, fieldNumbers: readonly number[]): fc.Arbitrary<Uint8Array> {
  const fieldNo = fc.oneof(fc.constantFrom(...fieldNumbers, 1), fc.integer({ min: 1, max: 2 ** 29 - 1 }));
  return fc.oneof(
    // Cut short.
    fc.nat().map((n) => body.subarray(0, body.length === 0 ? 0 : n % body.length)),
    // A byte flipped.
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
      const copy = Uint8Array.from(body);
      if (copy.length > 0) copy[at % copy.length] = (copy[at % copy.length] ?? 0) ^ xor;
      return copy;
    }),
    // A field with any wire type, the invalid 6 and 7 and the deprecated groups included.
    fc.tuple(fieldNo, fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 16 })).map(([no, wireType, tail]) => {
      const w = new BinaryWriter().raw(body);
      w.uint32(no * 8 + wireType);
      return Uint8Array.from([...w.finish(), ...tail]);
    }),
    // Nesting thousands deep through a length-delimited field.
    fc.tuple(fieldNo, fc.integer({ min: 100, max: 20_000 })).map(([no, depth]) => Buffer.concat([body, nested(no, depth)])),
  );
}

/** `depth` length-delimited fields `no`, each holding the next: headers computed inside out, written once. */
function nested(no: number, depth: number): Uint8Array {
  const headers: Uint8Array[] = [];
  let length = 0;
  for (let i = 0; i < depth; i++) {
    const header = new BinaryWriter().tag(no, WireType.LengthDelimited).uint32(length).finish();
    headers.push(header);
    length += header.length;
  }
  return Buffer.concat(headers.reverse());
}

/** A request body for `message`: generated from its descriptor, a third of them then damaged. */
export function requestBytes(message: DescMessage): fc.Arbitrary<Uint8Array> {
  const numbers = message.fields.map((f) => f.number);
  return messageBytes(message).chain((body) => fc.oneof({ weight: 2, arbitrary: fc.constant(body) }, { weight: 1, arbitrary: damaged(body, numbers) }));
}
