/** A string that is not `sha256:` followed by 64 lowercase hex digits. */
export class InvalidDigestError extends Error {
  constructor(readonly value: string) {
    super(`invalid digest ${JSON.stringify(value.slice(0, 100))}: expected "sha256:" and 64 lowercase hex digits`);
    this.name = 'InvalidDigestError';
  }
}

/** Content whose sha256 is not the one it was announced with. */
export class DigestMismatchError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`digest mismatch: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
  }
}

/** Content longer or shorter than announced. `actual` is a lower bound when the write stopped early. */
export class SizeMismatchError extends Error {
  constructor(
    readonly digest: string | undefined,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`size mismatch${digest ? ` for ${digest}` : ''}: expected ${expected} bytes, got ${actual > expected ? `more than ${expected}` : actual}`);
    this.name = 'SizeMismatchError';
  }
}

export class BlobNotFoundError extends Error {
  constructor(readonly digest: string) {
    super(`blob ${digest} is not in the store`);
    this.name = 'BlobNotFoundError';
  }
}
