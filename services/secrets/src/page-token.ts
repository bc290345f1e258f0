import { createHash } from 'node:crypto';
import { invalidArgument } from '@shellwego/kit/errors';

const VERSION = 'p1';

/** A short fingerprint of a query's filters, so a token only continues the query it came from. */
function fingerprint(query: Readonly<Record<string, string>>): string {
  const canonical = JSON.stringify(
    Object.keys(query)
      .sort()
      .map((key) => [key, query[key]]),
  );
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}

/** An opaque token meaning "continue `query` after id `lastId`". */
export function encodePageToken(query: Readonly<Record<string, string>>, lastId: bigint): string {
  return Buffer.from(`${VERSION}.${fingerprint(query)}.${lastId}`, 'utf8').toString('base64url');
}

/**
 * The id a token continues after; undefined for an empty token. A token
 * that is malformed or from another query is INVALID_ARGUMENT.
 */
export function decodePageToken(token: string, query: Readonly<Record<string, string>>, field = 'page.page_token'): bigint | undefined {
  if (token === '') return undefined;
  const [version, print, last, ...rest] = Buffer.from(token, 'base64url').toString('utf8').split('.');
  if (version !== VERSION || print === undefined || last === undefined || rest.length > 0 || !/^\d{1,20}$/.test(last)) {
    throw invalidArgument(`${field}: is not a page token this service issued; pass next_page_token from the previous response unchanged`);
  }
  if (print !== fingerprint(query)) {
    throw invalidArgument(`${field}: belongs to a query with other filters; repeat the same filters when paging, or start again without a token`);
  }
  return BigInt(last);
}
