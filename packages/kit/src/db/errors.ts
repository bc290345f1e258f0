// Recognizing Postgres errors by SQLSTATE, the same way for pg and PGlite.

export const UNIQUE_VIOLATION = '23505';

/** The SQLSTATE of err or of an error in its cause chain (kysely and our wrappers add layers). */
export function sqlState(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    // SQLSTATE classes start with a digit, F, H, P or X; Node's errno codes (EPIPE) with E.
    if (typeof code === 'string' && /^[0-9FHPX][0-9A-Z]{4}$/.test(code)) {
      return code;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export function isUniqueViolation(err: unknown): boolean {
  return sqlState(err) === UNIQUE_VIOLATION;
}
