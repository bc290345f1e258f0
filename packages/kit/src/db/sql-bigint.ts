// Contract cursors and ids are uint64; the databases store them as bigint (at most 2^63 - 1). A
// value above that cannot be a stored one: compared against, it is the same as the largest.
// (Sent to the database as is, it failed the query and the caller got INTERNAL.)
export const SQL_BIGINT_MAX = 2n ** 63n - 1n;

/** `value` for a `>`/`<` comparison with a bigint column: the same rows match, and the query runs. */
export function asSqlBigint(value: bigint): bigint {
  return value > SQL_BIGINT_MAX ? SQL_BIGINT_MAX : value;
}
