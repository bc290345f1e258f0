// The workload's environment: explicit env merged over the secrets (explicit env wins).
import { isUtf8 } from 'node:buffer';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { SecretBytes } from '@shellwego/kit/secret-bytes';
import { DEFAULT_PATH } from './path-in-root.js';
import { WorkloadError } from './workload-error.js';

/** Rejects names and values a process environment cannot carry. Messages name variables, never values. */
export function validateEnvironment(env: Readonly<Record<string, string>>, secrets: ReadonlyMap<string, SecretBytes>): void {
  for (const name of [...Object.keys(env), ...secrets.keys()]) {
    if (name === '' || name.includes('=') || name.includes('\0')) {
      throw new WorkloadError('invalid-argument', `environment variable name ${JSON.stringify(name)} is invalid (empty, or contains "=" or NUL)`);
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (value.includes('\0')) {
      throw new WorkloadError('invalid-argument', `environment variable ${name} contains a NUL character`);
    }
  }
  for (const [name, secret] of secrets) {
    const bytes = secret.reveal();
    if (bytes.includes(0)) {
      throw new WorkloadError('invalid-argument', `secret ${name} contains a NUL byte, which an environment variable cannot carry`);
    }
    if (!isUtf8(bytes)) {
      throw new WorkloadError('invalid-argument', `secret ${name} is not valid UTF-8, which an environment variable passed by the agent must be`);
    }
  }
}

// What the namespace init's shell can export (namespace-launch.ts).
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NUL = new Uint8Array([0]);

/** VM mode: every name must be one the namespace init's shell can export. */
export function validateShellNames(env: Readonly<Record<string, string>>, secrets: ReadonlyMap<string, SecretBytes>): void {
  for (const name of [...Object.keys(env), ...secrets.keys()]) {
    if (!SHELL_NAME.test(name)) {
      throw new WorkloadError(
        'invalid-argument',
        `environment variable name ${JSON.stringify(name)} is not [A-Za-z_][A-Za-z0-9_]*, which a VM workload's environment needs`,
      );
    }
  }
}

/**
 * VM mode: writes the child's environment (the same merge as childEnvironment) onto out as
 * NUL-terminated NAME=value records and closes it. Secret values are written from views of
 * their own bytes, never copied or turned into strings; they must not be wiped before this
 * resolves (the stream may still hold them).
 */
export async function writeEnvironment(out: Writable, env: Readonly<Record<string, string>>, secrets: ReadonlyMap<string, SecretBytes>): Promise<void> {
  for (const [name, secret] of secrets) {
    if (!Object.hasOwn(env, name)) {
      out.write(`${name}=`);
      out.write(secret.reveal());
      out.write(NUL);
    }
  }
  for (const [name, value] of Object.entries(env)) {
    out.write(`${name}=${value}\0`);
  }
  if (!Object.hasOwn(env, 'PATH')) {
    out.write(`PATH=${DEFAULT_PATH}\0`);
  }
  out.end();
  // The write side only: the child's end of the pipe stays open in the init for as long as it runs.
  await finished(out, { readable: false });
}

/**
 * Process mode: builds the child's environment object. This is the only place secret bytes become JS strings:
 * child_process takes strings only. Those strings are handed to spawn() and dropped; they live
 * on in the child's memory (its environment) and, until garbage collection, in the agent's
 * heap, where they cannot be wiped. Nothing here is written anywhere.
 */
export function childEnvironment(env: Readonly<Record<string, string>>, secrets: ReadonlyMap<string, SecretBytes>): Record<string, string> {
  const merged: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, secret] of secrets) {
    if (!Object.hasOwn(env, name)) {
      merged[name] = utf8StringOf(secret.reveal());
    }
  }
  for (const [name, value] of Object.entries(env)) {
    merged[name] = value;
  }
  merged.PATH ??= DEFAULT_PATH;
  return merged;
}

/**
 * Decodes through a view of the secret's own memory. Buffer.from(uint8Array) would first copy the
 * bytes, and for small values into Node's shared allocation pool, a copy nobody can wipe.
 */
function utf8StringOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/** The PATH a command is looked up with: the explicit one, else the default (never a secret's). */
export function searchPathOf(env: Readonly<Record<string, string>>): string {
  return env.PATH ?? DEFAULT_PATH;
}
