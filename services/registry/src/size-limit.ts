/** An upload larger than the configured limit. */
export class TooLargeError extends Error {
  constructor(
    readonly what: string,
    readonly limit: number,
    readonly setting: string,
  ) {
    super(`${what} is larger than the ${limit} bytes allowed; raise ${setting} to accept it`);
    this.name = 'TooLargeError';
  }
}

/**
 * Passes a byte stream through, failing it with TooLargeError once more
 * than `limit` bytes went by. `exceeded` stays set, so the caller can tell
 * the limit apart from whatever error a consumer wrapped it in.
 */
export class ByteLimit {
  exceeded: TooLargeError | undefined;

  constructor(
    private readonly limit: number,
    private readonly what: string,
    private readonly setting: string,
  ) {}

  async *pass(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    let total = 0;
    for await (const chunk of source) {
      total += chunk.length;
      if (total > this.limit) {
        this.exceeded = new TooLargeError(this.what, this.limit, this.setting);
        throw this.exceeded;
      }
      yield chunk;
    }
  }
}
