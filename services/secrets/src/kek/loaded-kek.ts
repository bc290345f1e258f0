import type { KeyObject } from 'node:crypto';

/**
 * One master key version in memory. The material is a node KeyObject (held
 * outside the JS heap, never serialized by accident). A KMS- or HSM-backed
 * source yields the same shape by unwrapping a local KEK once at load (the
 * Kubernetes KMS v2 pattern), so per-secret work never leaves the process.
 */
export interface LoadedKek {
  /** Stable id stored in every blob this key wraps, e.g. "k1-3fa2c0de". */
  readonly id: string;
  /** AES-256 key. */
  readonly key: KeyObject;
  readonly createdAt: Date;
}
