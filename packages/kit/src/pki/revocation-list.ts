import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isErrno } from '../errors/errno.js';

/**
 * Serial numbers of certificates that must no longer be accepted, read from a
 * text file (one hex serial per line, `#` comments) and re-read when it
 * changes, so a revocation takes effect without a restart.
 */
export class RevocationList {
  private serials = new Set<string>();

  private constructor(private readonly path: string | undefined) {}

  static empty(): RevocationList {
    return new RevocationList(undefined);
  }

  static async fromFile(path: string, options: { watch?: boolean } = {}): Promise<RevocationList> {
    const list = new RevocationList(path);
    await list.reload();
    if (options.watch) {
      // Polling works on every filesystem and survives the file being replaced.
      watchFile(path, { interval: 2000, persistent: false }, () => void list.reload());
    }
    return list;
  }

  has(serialHex: string): boolean {
    return this.serials.has(normalizeSerial(serialHex));
  }

  async reload(): Promise<void> {
    if (!this.path) return;
    let text = '';
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
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
