import { Code, ConnectError } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { mapHandlerErrors } from './map-handler-errors.js';

class DomainError extends Error {}

const toConnectError = (err: unknown): unknown => (err instanceof DomainError ? new ConnectError(err.message, Code.FailedPrecondition) : err);

describe('mapHandlerErrors', () => {
  const impl = mapHandlerErrors(
    {
      value: 'not a handler',
      sync(fail: boolean): string {
        if (fail) throw new DomainError('sync');
        return 'ok';
      },
      async unary(fail: boolean): Promise<string> {
        if (fail) throw new DomainError('unary');
        return 'ok';
      },
      async *stream(fail: boolean): AsyncGenerator<number> {
        yield 1;
        if (fail) throw new DomainError('stream');
        yield 2;
      },
      async other(): Promise<void> {
        throw new TypeError('unknown stays as it is');
      },
    },
    toConnectError,
  );

  async function drain(stream: AsyncIterable<number>): Promise<number[]> {
    const seen: number[] = [];
    for await (const n of stream) seen.push(n);
    return seen;
  }

  it('passes results and non-handlers through', async () => {
    expect(impl.value).toBe('not a handler');
    expect(impl.sync(false)).toBe('ok');
    expect(await impl.unary(false)).toBe('ok');
    expect(await drain(impl.stream(false))).toEqual([1, 2]);
  });

  it('maps what a handler throws, rejects with, or its stream throws', async () => {
    expect(() => impl.sync(true)).toThrow(ConnectError);
    await expect(impl.unary(true)).rejects.toMatchObject({ code: Code.FailedPrecondition, rawMessage: 'unary' });
    await expect(drain(impl.stream(true))).rejects.toMatchObject({ code: Code.FailedPrecondition, rawMessage: 'stream' });
    await expect(impl.other()).rejects.toBeInstanceOf(TypeError);
  });

  it('ends the handler stream when the caller stops reading', async () => {
    let finished = false;
    const wrapped = mapHandlerErrors(
      {
        async *stream(): AsyncGenerator<number> {
          try {
            yield 1;
            yield 2;
          } finally {
            finished = true;
          }
        },
      },
      toConnectError,
    );
    for await (const n of wrapped.stream()) {
      expect(n).toBe(1);
      break;
    }
    expect(finished).toBe(true);
  });
});
