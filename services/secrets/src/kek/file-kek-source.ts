import { readdir } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { KekError } from './kek-error.js';
import { kekIdFor, kekIdVersion } from './kek-id.js';
import type { KekSource } from './kek-source.js';
import { checkKeyDirectory, createKeyFile, readKeyFile } from './key-file.js';
import type { LoadedKek } from './loaded-kek.js';

/** The environment variable operators set to move the master key file. */
export const MASTER_KEY_FILE_ENV = 'SHELLWEGO_SECRETS_MASTER_KEY_FILE';

/** `$SHELLWEGO_HOME/secrets/master.key`, the default master key path. */
export function defaultMasterKeyPath(shellwegoHome: string): string {
  return join(shellwegoHome, 'secrets', 'master.key');
}

/**
 * Master keys as 32-byte files. Layout, given the configured path
 * `<dir>/master.key`:
 *   - version 1 is `<dir>/master.key` itself (so a single-key install is one
 *     file at the documented path);
 *   - version N >= 2 (after rotations) is `<dir>/master-k<N>.key`.
 * Every file is mode 0600 or narrower, `<dir>` 0700 or narrower. Back up the
 * whole directory: a lost key file makes the secrets it wraps unrecoverable.
 */
export class FileKekSource implements KekSource {
  readonly path: string;
  readonly description: string;
  readonly #dir: string;
  readonly #stem: string;
  readonly #ext: string;

  constructor(path: string) {
    this.path = path;
    this.#dir = dirname(path);
    this.#ext = extname(path);
    this.#stem = basename(path, this.#ext);
    this.description = `master key files ${path} and ${join(this.#dir, `${this.#stem}-k<N>${this.#ext}`)}`;
  }

  /** The file holding master key version `version`. */
  pathOf(version: number): string {
    return version === 1 ? this.path : join(this.#dir, `${this.#stem}-k${version}${this.#ext}`);
  }

  async list(): Promise<LoadedKek[]> {
    if (!(await checkKeyDirectory(this.#dir))) return [];
    const keks: LoadedKek[] = [];
    for (const version of await this.#versionsOnDisk()) {
      const contents = await readKeyFile(this.pathOf(version));
      // A file listed a moment ago and gone now is treated as absent;
      // assertKeysCover decides whether that is fatal.
      if (contents === undefined) continue;
      keks.push({ id: kekIdFor(version, contents.key), key: contents.key, createdAt: contents.modifiedAt });
    }
    return keks;
  }

  async create(): Promise<LoadedKek> {
    const versions = (await checkKeyDirectory(this.#dir)) ? await this.#versionsOnDisk() : [];
    const version = (versions.at(-1) ?? 0) + 1;
    const contents = await createKeyFile(this.pathOf(version));
    return { id: kekIdFor(version, contents.key), key: contents.key, createdAt: contents.modifiedAt };
  }

  async explainMissing(kekId: string): Promise<string> {
    const version = kekIdVersion(kekId);
    if (version === undefined) {
      return `${kekId} is not a file master key id, and this service reads ${this.description}. Configure the key source that holds it`;
    }
    const path = this.pathOf(version);
    const present = await readKeyFile(path).catch((err: unknown) => {
      if (err instanceof KekError) return err;
      throw err;
    });
    if (present instanceof KekError) return `${path} cannot be used: ${present.message}`;
    if (present !== undefined) {
      return `${path} holds a different key (${kekIdFor(version, present.key)}). Restore the original key file from backup (it is not recoverable), or point ${MASTER_KEY_FILE_ENV} at the right master.key`;
    }
    return `${path} is missing. Restore the key file from backup (it is not recoverable), or point ${MASTER_KEY_FILE_ENV} at it`;
  }

  /** Version numbers with a file present, ascending. */
  async #versionsOnDisk(): Promise<number[]> {
    const versions: number[] = [];
    const pattern = new RegExp(`^${escapeRegExp(this.#stem)}-k([1-9][0-9]{0,9})${escapeRegExp(this.#ext)}$`);
    for (const name of await readdir(this.#dir)) {
      if (name === basename(this.path)) {
        versions.push(1);
        continue;
      }
      const version = Number(pattern.exec(name)?.[1]);
      if (version >= 2) versions.push(version);
    }
    return versions.sort((a, b) => a - b);
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
