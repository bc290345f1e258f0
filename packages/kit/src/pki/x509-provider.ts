// @peculiar/x509 resolves its crypto and ASN.1 helpers through tsyringe, which
// needs the reflect-metadata polyfill loaded before the library itself.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// @peculiar/x509 types its provider with the DOM Crypto type; Node's webcrypto
// implements the same interface.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

/** ECDSA P-256 with SHA-256: the only key type shellwego issues or accepts. */
export const ecdsaP256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const subtle = webcrypto.subtle;

export type CryptoKey = webcrypto.CryptoKey;
export type EcKeyAlgorithm = webcrypto.EcKeyAlgorithm;
export type KeyUsage = webcrypto.KeyUsage;
