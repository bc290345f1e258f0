// Result parsing that makes pg and PGlite return the same JS types for the same query.

import type { CustomTypesConfig } from 'pg';
import pg from 'pg';

const INT8 = 20;
const BYTEA = 17;
const INT8_ARRAY = 1016;

/**
 * Parses Postgres' text form of an int8 array ("{1,NULL,3}", nested "{{1,2},{3,4}}", or with
 * explicit bounds "[0:1]={1,2}") into bigints.
 */
export function parseInt8Array(text: string): unknown[] {
  let i = text.startsWith('[') ? text.indexOf('=') + 1 : 0;
  const fail = (): never => {
    throw new Error(`malformed int8[] value from the database at offset ${i}`);
  };
  const level = (): unknown[] => {
    if (text[i] !== '{') {
      fail();
    }
    i++;
    const out: unknown[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (text[i] === '{') {
        out.push(level());
      } else {
        let end = i;
        while (end < text.length && text[end] !== ',' && text[end] !== '}') {
          end++;
        }
        const token = text.slice(i, end);
        out.push(token === 'NULL' ? null : BigInt(token));
        i = end;
      }
      const separator = text[i++];
      if (separator === '}') {
        return out;
      }
      if (separator !== ',') {
        fail();
      }
    }
  };
  return level();
}

const parseInt8 = (text: string): bigint => BigInt(text);

// int8 is a bigint on both (pg gives strings, PGlite a number or a bigint depending on size);
// bytea is a Buffer on both (PGlite gives a plain Uint8Array).
export const pgliteParsers: Record<number, (text: string) => unknown> = {
  [INT8]: parseInt8,
  [INT8_ARRAY]: parseInt8Array,
  [BYTEA]: (text) => Buffer.from(text.slice(2), 'hex'),
};

// Per pool rather than pg.types.setTypeParser, which would change every pg user in the process.
export const pgTypes: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary' && oid === INT8) {
      return parseInt8;
    }
    if (format !== 'binary' && oid === INT8_ARRAY) {
      return parseInt8Array;
    }
    return pg.types.getTypeParser(oid, format);
  }) as CustomTypesConfig['getTypeParser'],
};
