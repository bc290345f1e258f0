import { describe, expect, it } from 'vitest';
import { ChunkedEncryptionBudget, DEFAULT_KEK_ENCRYPTION_LIMIT, EncryptionLimitError, InMemoryEncryptionBudget } from './encryption-budget.js';

describe('InMemoryEncryptionBudget', () => {
  it('defaults far below the 2^32 GCM bound and refuses past its limit', async () => {
    expect(DEFAULT_KEK_ENCRYPTION_LIMIT).toBe(2 ** 31);
    const budget = new InMemoryEncryptionBudget(10, { k1: 8 });
    await budget.reserve('k1', 2);
    await expect(budget.reserve('k1', 1)).rejects.toBeInstanceOf(EncryptionLimitError);
    await expect(budget.reserve('k1', 1)).rejects.toThrow(/master key k1 has reached its limit of 10 encryptions; rotate/);
    await budget.reserve('k2', 10);
    expect([budget.used('k1'), budget.used('k2')]).toEqual([10, 10]);
    expect(() => budget.reserve('k1', 0)).toThrow(RangeError);
  });
});

describe('ChunkedEncryptionBudget', () => {
  it('reserves from the inner budget in chunks, also under concurrency', async () => {
    const inner = new InMemoryEncryptionBudget(100);
    const calls: number[] = [];
    const counting = {
      reserve: (id: string, n: number) => {
        calls.push(n);
        return inner.reserve(id, n);
      },
    };
    const budget = new ChunkedEncryptionBudget(counting, 8);
    await Promise.all(Array.from({ length: 20 }, () => budget.reserve('k1', 1)));
    expect(calls).toEqual([8, 8, 8]);
    expect(inner.used('k1')).toBe(24);
    await budget.reserve('k1', 4);
    expect(calls).toEqual([8, 8, 8]);
    await budget.reserve('k1', 10);
    expect(calls).toEqual([8, 8, 8, 10]);
  });

  it('falls back to exact reservations near the limit, then refuses', async () => {
    const inner = new InMemoryEncryptionBudget(5);
    const budget = new ChunkedEncryptionBudget(inner, 4);
    for (let i = 0; i < 5; i++) await budget.reserve('k1', 1);
    expect(inner.used('k1')).toBe(5);
    await expect(budget.reserve('k1', 1)).rejects.toBeInstanceOf(EncryptionLimitError);
    // A refusal does not wedge the queue for that key.
    await expect(budget.reserve('k1', 1)).rejects.toBeInstanceOf(EncryptionLimitError);
  });
});
