import { readFile } from 'node:fs/promises';
import { errnoCode } from '../errors/errno.js';
import { loadGrantPublicKey } from './grant-keys.js';
import { createGrantVerifier, type GrantVerifier } from './grant-verifier.js';

/** The grant verifier from the configured PEM files; errors name the file and the setting. */
export async function loadGrantVerifier(paths: readonly string[], envVar: string): Promise<GrantVerifier> {
  const pems: string[] = [];
  for (const path of paths) {
    let pem: string;
    try {
      pem = await readFile(path, 'utf8');
    } catch (err) {
      const code = errnoCode(err) ?? 'unreadable';
      throw new Error(
        `cannot read the grant public key ${path} (${code}); point ${envVar} at the scheduler's grant public key (PEM), or run \`npm start\` once to create a development PKI`,
      );
    }
    try {
      loadGrantPublicKey(pem);
    } catch (err) {
      throw new Error(`${path} (${envVar}): ${err instanceof Error ? err.message : String(err)}`);
    }
    pems.push(pem);
  }
  return createGrantVerifier(pems);
}
