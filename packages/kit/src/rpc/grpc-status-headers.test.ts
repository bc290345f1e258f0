import type { OutgoingHttpHeaders } from 'node:http';
import type http2 from 'node:http2';
import { describe, expect, it } from 'vitest';
import { conformGrpcStatus } from './grpc-status-headers.js';

/** The trailers a handler writes, as the wrapped response passes them on. */
function trailersAfter(write: (res: http2.Http2ServerResponse) => void): OutgoingHttpHeaders {
  let written: OutgoingHttpHeaders = {};
  const res = {
    addTrailers: (t: OutgoingHttpHeaders) => {
      written = t;
    },
    writeHead: () => res,
  } as unknown as http2.Http2ServerResponse;
  conformGrpcStatus((_req, r) => write(r))({} as http2.Http2ServerRequest, res);
  return written;
}

describe('conformGrpcStatus', () => {
  it('answers an undecodable request INVALID_ARGUMENT, with the message in spec encoding', () => {
    const t = trailersAfter((res) => res.addTrailers({ 'grpc-status': '13', 'grpc-message': encodeURIComponent('parse binary: premature EOF') }));
    expect(t).toEqual({ 'grpc-status': '3', 'grpc-message': 'parse binary: premature EOF' });
  });

  it('answers a message flagged compressed without a grpc-encoding INVALID_ARGUMENT: the client sent it', () => {
    const t = trailersAfter((res) =>
      res.addTrailers({ 'grpc-status': '13', 'grpc-message': encodeURIComponent('received compressed envelope, but do not know how to decompress') }),
    );
    expect(t['grpc-status']).toBe('3');
  });

  it('cuts a message quoting a long input, so the status still fits in a header', () => {
    const quoted = `name: "${'x'.repeat(20_000)}é" is not an app name`;
    const t = trailersAfter((res) => res.addTrailers({ 'grpc-status': '3', 'grpc-message': encodeURIComponent(quoted) }));
    const message = decodeURIComponent(String(t['grpc-message']));
    expect(message.startsWith('name: "xxx')).toBe(true);
    expect(message).toMatch(/… \(\d+ more characters cut\)$/);
    expect(message.length).toBeLessThan(1100);
  });
});
