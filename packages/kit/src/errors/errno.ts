// Recognizing Node's system errors (ENOENT, EEXIST, ENOSPC...) from an unknown thrown value.

/** The code of a Node error (ENOENT, ECONNRESET, ERR_...), or undefined for anything else. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Whether err carries one of these codes. */
export function isErrno(err: unknown, ...codes: readonly string[]): boolean {
  const code = errnoCode(err);
  return code !== undefined && codes.includes(code);
}

/** The system call a Node system error failed in (open, connect, read...), or undefined. */
export function failedSyscall(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'syscall' in err && typeof err.syscall === 'string' ? err.syscall : undefined;
}
