import { describe, expect, it } from 'vitest';
import { parseInt8Array } from './type-parsers.js';

describe('parseInt8Array', () => {
  it('parses flat, empty, nested and explicitly bounded int8 arrays into bigints', () => {
    expect(parseInt8Array('{}')).toEqual([]);
    expect(parseInt8Array('{1,NULL,-9223372036854775808}')).toEqual([1n, null, -9223372036854775808n]);
    expect(parseInt8Array('{{1,2},{3,4}}')).toEqual([
      [1n, 2n],
      [3n, 4n],
    ]);
    expect(parseInt8Array('[0:1]={5,6}')).toEqual([5n, 6n]);
  });

  it('rejects text that is not an array', () => {
    expect(() => parseInt8Array('1,2')).toThrow(/malformed int8\[\] value/);
    expect(() => parseInt8Array('{1,2')).toThrow();
  });
});
