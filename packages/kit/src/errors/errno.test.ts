import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { errnoCode, failedSyscall, isErrno } from './errno.js';

describe('errno helpers', () => {
  it('read the code and syscall of a real system error', async () => {
    const err = await readFile('/no/such/file').catch((e: unknown) => e);
    expect(errnoCode(err)).toBe('ENOENT');
    expect(isErrno(err, 'ENOENT')).toBe(true);
    expect(isErrno(err, 'EEXIST', 'ENOTDIR', 'ENOENT')).toBe(true);
    expect(isErrno(err, 'EEXIST', 'ENOSPC')).toBe(false);
    expect(failedSyscall(err)).toBe('open');
  });

  it('find nothing in values that are not Node errors', () => {
    for (const value of [undefined, null, 'ENOENT', 42, new Error('plain'), { code: 7 }, { syscall: 1 }]) {
      expect(errnoCode(value)).toBeUndefined();
      expect(isErrno(value, 'ENOENT')).toBe(false);
      expect(failedSyscall(value)).toBeUndefined();
    }
  });
});
