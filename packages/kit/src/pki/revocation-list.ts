import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isErrno } from '../errors/errno.js';

/**
 * Serial numbers of certificates that must no longer be accepted, read from a
 * text file (one hex serial per line, `#` comments) and re-read when it
 * changes, so a revocation takes effect without a restart. A file that is
 * missing or cannot be read is not an empty list: `unavailable` says why, and
 * callers refuse the certificates it could have revoked until it reads again.
 */
export class RevocationList {
  private serials = new Set<string>();
  private problem: string | undefined;

  private constructor(private readonly path: string | undefined) {}

  static empty(): RevocationList {
    return new RevocationList(undefined);
  }

  static async fromFile(path: string, options: { watch?: boolean } = {}): Promise<RevocationList> {
    const list = new RevocationList(path);
    await list.reload();
    if (options.watch) {
      // Polling works on every filesystem and survives the file being replaced.
      // reload() never rejects: a failure is kept in `unavailable`.
      watchFile(path, { interval: 2000, persistent: false }, () => void list.reload());
    }
    return list;
  }

  has(serialHex: string): boolean {
    return this.serials.has(normalizeSerial(serialHex));
  }

  /** Why the list cannot be trusted right now (missing or unreadable), or undefined when it was read. */
  get unavailable(): string | undefined {
    return this.problem;
  }

  async reload(): Promise<void> {
    if (!this.path) return;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      this.problem = isErrno(error, 'ENOENT')
        ? `the revocation list ${this.path} does not exist (create it empty if nothing is revoked)`
        : `the revocation list ${this.path} cannot be read (${error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : String(error)})`;
      return;
    }
    this.problem = undefined;
    this.serials = new Set(
      text
        .split('\n')
        .map((line) => line.replace(/#.*/, '').trim())
        .filter((line) => line.length > 0)
        .map(normalizeSerial),
    );
  }

  close(): void {
    if (this.path) unwatchFile(this.path);
  }
}

/** Serials compare as lowercase hex without leading zeros or separators. */
export function normalizeSerial(serial: string): string {
  return serial
    .toLowerCase()
    .replace(/[^0-9a-f]/g, '')
    .replace(/^0+(?=.)/, '');
}
