// One process per PGlite data directory: PGlite itself does not stop a second one corrupting it.
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { errnoCode, isErrno } from '../errors/errno.js';

export interface DirLock {
  release(): void;
}

/** Takes `<dataDir>.lock` (beside the directory: initdb wants the directory to itself). */
export function lockDataDir(dataDir: string): DirLock {
  const lockPath = `${dataDir}.lock`;
  // Second attempt only after removing a lock whose process is gone.
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(lockPath, 'wx', 0o600);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) {
        throw new Error(`cannot create the lock file ${lockPath}: ${errnoCode(err) ?? String(err)}`, { cause: err });
      }
      const holder = lockHolder(lockPath);
      if (holder !== undefined && isRunning(holder)) {
        throw new Error(`the PGlite data directory ${dataDir} is in use by process ${holder} (lock file ${lockPath}); only one process may open it`);
      }
      rmSync(lockPath, { force: true });
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    let released = false;
    return {
      release() {
        if (!released) {
          released = true;
          rmSync(lockPath, { force: true });
        }
      },
    };
  }
  throw new Error(`cannot lock the PGlite data directory ${dataDir}: ${lockPath} keeps reappearing`);
}

function lockHolder(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user, so it is running.
    return isErrno(err, 'EPERM');
  }
}
