import type { KeyObject } from 'node:crypto';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';

/** The scheduler's Ed25519 key for signing grants. */
export interface GrantSigningKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** A freshly generated grant key pair, as PEM (PKCS#8 private, SPKI public). */
export interface GrantKeyPairPem {
  readonly keyId: string;
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

/**
 * Key id of an Ed25519 public key: the first 16 hex characters of SHA-256 over
 * its SPKI DER encoding. Derived, not configured, so signer and verifier can
 * never disagree about which key an id names.
 */
export function grantKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export function generateGrantKeyPair(): GrantKeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    keyId: grantKeyId(publicKey),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** Loads a PKCS#8 PEM Ed25519 private key; throws a plain Error naming the problem. */
export function loadGrantSigningKey(pem: string | Uint8Array): GrantSigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: toPemInput(pem), format: 'pem' });
  } catch {
    throw new Error('grant signing key is not a readable PEM private key; expected a PKCS#8 Ed25519 key ("-----BEGIN PRIVATE KEY-----")');
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(
      `grant signing key is a ${privateKey.asymmetricKeyType ?? 'unknown'} key; grants are signed with Ed25519 (generate one with generateGrantKeyPair or "openssl genpkey -algorithm ed25519")`,
    );
  }
  const publicKey = createPublicKey(privateKey);
  return { keyId: grantKeyId(publicKey), privateKey, publicKey };
}

/** Loads an SPKI PEM Ed25519 public key; throws a plain Error naming the problem. */
export function loadGrantPublicKey(pem: string | Uint8Array): KeyObject {
  const input = toPemInput(pem);
  if (isPrivateKeyPem(input)) {
    // createPublicKey would silently derive the public half; refuse instead so
    // a private key never sits in verifier configuration.
    throw new Error('grant verifying key must be a public key, but a private key was given; configure the public half only');
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: input, format: 'pem' });
  } catch {
    throw new Error('grant verifying key is not a readable PEM public key; expected an SPKI Ed25519 key ("-----BEGIN PUBLIC KEY-----")');
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(`grant verifying key is a ${publicKey.asymmetricKeyType ?? 'unknown'} key; grants are verified with Ed25519`);
  }
  return publicKey;
}

function isPrivateKeyPem(input: string | Buffer): boolean {
  try {
    createPrivateKey({ key: input, format: 'pem' });
    return true;
  } catch {
    return false;
  }
}

function toPemInput(pem: string | Uint8Array): string | Buffer {
  return typeof pem === 'string' ? pem : Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength);
}
