import type { SecretScopeRef } from '../validation/secret-scope.js';
import { describeSecretScope } from '../validation/secret-scope.js';
import { FORMAT_VERSION } from './blob-format.js';

/** The row a blob belongs to. A blob opens only under the binding it was sealed with. */
export interface SecretBinding {
  readonly scope: SecretScopeRef;
  readonly name: string;
  /** 1-based secret version (uint32). */
  readonly version: number;
}

// Scope kind codes inside the AAD; 1 and 2 match SecretScopeKind in the contract.
const KIND_WORKSPACE = 1;
const KIND_APP = 2;
// Not a secret row: the service's digest key (see digest-key.ts).
const KIND_DIGEST_KEY = 0x80;

/**
 * Unambiguous encoding of a binding: format version, kind byte, then
 * length-prefixed (u32 big-endian) UTF-8 app and name, then the u32 version.
 * Length prefixes rule out delimiter games ("a/b" + "c" vs "a" + "b/c").
 */
export function encodeSecretBinding(binding: SecretBinding): Buffer {
  if (!Number.isInteger(binding.version) || binding.version < 1 || binding.version > 0xffff_ffff) {
    throw new RangeError(`secret version must be an integer in [1, 2^32-1], got ${binding.version}`);
  }
  if (binding.name === '') throw new RangeError('secret name must not be empty');
  const app = binding.scope.kind === 'app' ? binding.scope.app : '';
  if (binding.scope.kind === 'app' && app === '') throw new RangeError('app scope needs an app name');
  return encode(binding.scope.kind === 'app' ? KIND_APP : KIND_WORKSPACE, app, binding.name, binding.version);
}

/**
 * Scope and name without a version, for value digests: the same encoding as a binding with
 * version 0, which no binding has (versions start at 1), so the two never collide.
 */
export function encodeSecretSubject(scope: SecretScopeRef, name: string): Buffer {
  if (name === '') throw new RangeError('secret name must not be empty');
  const app = scope.kind === 'app' ? scope.app : '';
  return encode(scope.kind === 'app' ? KIND_APP : KIND_WORKSPACE, app, name, 0);
}

export function encodeDigestKeyBinding(): Buffer {
  return encode(KIND_DIGEST_KEY, '', 'digest-key', 1);
}

/** `app shop DB_PASSWORD v3`, for messages (names are not secret). */
export function describeSecretBinding(binding: SecretBinding): string {
  return `${describeSecretScope(binding.scope)} ${binding.name} v${binding.version}`;
}

function encode(kind: number, app: string, name: string, version: number): Buffer {
  const appBytes = utf8Exact(app);
  const nameBytes = utf8Exact(name);
  const out = Buffer.alloc(2 + 4 + appBytes.length + 4 + nameBytes.length + 4);
  let at = out.writeUInt8(FORMAT_VERSION, 0);
  at = out.writeUInt8(kind, at);
  at = out.writeUInt32BE(appBytes.length, at);
  at += appBytes.copy(out, at);
  at = out.writeUInt32BE(nameBytes.length, at);
  at += nameBytes.copy(out, at);
  out.writeUInt32BE(version, at);
  return out;
}

/** UTF-8 bytes, refusing strings (lone surrogates) that would not round-trip, so two strings never share an encoding. */
function utf8Exact(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.toString('utf8') !== text) throw new RangeError('binding strings must be well-formed Unicode');
  return bytes;
}
