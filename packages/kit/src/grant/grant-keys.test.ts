import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateGrantKeyPair, grantKeyId, loadGrantPublicKey, loadGrantSigningKey } from './grant-keys.js';
import { createGrantVerifier } from './grant-verifier.js';

describe('grant keys', () => {
  it('derives the key id from the public key, identically on both sides', () => {
    const pair = generateGrantKeyPair();
    const der = createPublicKey(pair.publicKeyPem).export({ type: 'spki', format: 'der' });
    expect(pair.keyId).toBe(createHash('sha256').update(der).digest('hex').slice(0, 16));
    expect(loadGrantSigningKey(pair.privateKeyPem).keyId).toBe(pair.keyId);
    expect(loadGrantSigningKey(Buffer.from(pair.privateKeyPem)).keyId).toBe(pair.keyId);
    expect(grantKeyId(loadGrantPublicKey(pair.publicKeyPem))).toBe(pair.keyId);
    expect(generateGrantKeyPair().keyId).not.toBe(pair.keyId);
  });

  it('rejects non-Ed25519 and unreadable keys with an explanation', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => loadGrantSigningKey(ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())).toThrow(/ec key; grants are signed with Ed25519/);
    expect(() => loadGrantPublicKey(ec.publicKey.export({ type: 'spki', format: 'pem' }).toString())).toThrow(/Ed25519/);
    expect(() => loadGrantSigningKey('not a pem')).toThrow(/not a readable PEM private key/);
    expect(() => loadGrantPublicKey('not a pem')).toThrow(/not a readable PEM public key/);
  });

  it('refuses a private key as verifier configuration', () => {
    const pair = generateGrantKeyPair();
    expect(() => createGrantVerifier([pair.privateKeyPem])).toThrow(/must be a public key/);
  });

  it('needs at least one verifying key and de-duplicates repeats', () => {
    const pair = generateGrantKeyPair();
    expect(() => createGrantVerifier([])).toThrow(/no grant verifying key/);
    expect([...createGrantVerifier([pair.publicKeyPem, pair.publicKeyPem]).keys.keys()]).toEqual([pair.keyId]);
  });
});
