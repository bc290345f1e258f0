import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretsHarness } from '../test/support/secrets-harness.js';
import type { AuditEntry } from './audit-log.js';
import { AuditLog } from './audit-log.js';

describe('audit log', () => {
  let harness: SecretsHarness;
  let audit: AuditLog;
  const entries: AuditEntry[] = [];

  beforeAll(async () => {
    harness = await SecretsHarness.open();
    audit = new AuditLog(harness.domain.db);
    for (let i = 0; i < 25; i++) {
      entries.push({
        principal: i % 2 === 0 ? 'spiffe://shellwego/node/n1' : 'spiffe://shellwego/user/admin',
        action: i % 2 === 0 ? 'resolve' : 'set',
        scope: { kind: 'app', app: 'shop' },
        secrets: [{ name: i % 3 === 0 ? 'DB_PASSWORD' : 'API_KEY', version: i + 1 }],
        instanceId: i % 2 === 0 ? `i-${i % 4}` : '',
        outcome: i % 5 === 0 ? 'denied' : 'granted',
        ...(i % 5 === 0 ? { reason: 'expired: too late' } : {}),
      });
    }
    for (const entry of entries) await audit.append(entry);
  });
  afterAll(() => harness.close());

  it('pages through everything oldest first with opaque tokens', async () => {
    const seen: bigint[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await audit.list({ pageSize: 10, pageToken: token });
      seen.push(...page.events.map((e) => e.id));
      token = page.nextPageToken;
      pages++;
    } while (token !== '');
    expect(pages).toBe(3);
    expect(seen).toHaveLength(25);
    expect([...seen].sort((a, b) => (a < b ? -1 : 1))).toEqual(seen);
    const first = (await audit.list({ pageSize: 1 })).events[0];
    expect(first).toMatchObject({
      principal: entries[0]?.principal,
      action: 'resolve',
      scope: { kind: 'app', app: 'shop' },
      secrets: [{ name: 'DB_PASSWORD', version: 1 }],
      instanceId: 'i-0',
      outcome: 'denied',
      reason: 'expired: too late',
    });
    expect(first?.time).toBeInstanceOf(Date);
  });

  it('filters by action, outcome, name, instance and principal, and follows after an id', async () => {
    const count = async (query: Parameters<AuditLog['list']>[0], keep: (entry: AuditEntry) => boolean) => {
      const found = (await audit.list({ pageSize: 1000, ...query })).events.length;
      expect(found, JSON.stringify(query)).toBe(entries.filter(keep).length);
      expect(found).toBeGreaterThan(0);
    };
    await count({ action: 'set' }, (e) => e.action === 'set');
    await count({ outcome: 'denied' }, (e) => e.outcome === 'denied');
    await count({ name: 'DB_PASSWORD' }, (e) => e.secrets?.[0]?.name === 'DB_PASSWORD');
    await count({ instanceId: 'i-2' }, (e) => e.instanceId === 'i-2');
    await count({ principal: 'spiffe://shellwego/user/admin', outcome: 'denied' }, (e) => e.principal.endsWith('/admin') && e.outcome === 'denied');
    await count(
      { action: 'resolve', name: 'DB_PASSWORD', outcome: 'granted' },
      (e) => e.action === 'resolve' && e.secrets?.[0]?.name === 'DB_PASSWORD' && e.outcome === 'granted',
    );
    const all = (await audit.list({ pageSize: 1000 })).events;
    const tenth = all[9]?.id ?? 0n;
    expect((await audit.list({ afterId: tenth, pageSize: 1000 })).events.map((e) => e.id)).toEqual(all.slice(10).map((e) => e.id));
    // Any uint64 the contract allows, past what the database can hold, is simply after every event.
    expect((await audit.list({ afterId: 2n ** 64n - 1n, pageSize: 1000 })).events).toEqual([]);
  });

  it('refuses a token from another query or a forged one', async () => {
    const page = await audit.list({ pageSize: 5, action: 'set' });
    expect(page.nextPageToken).not.toBe('');
    await expect(audit.list({ pageSize: 5, action: 'resolve', pageToken: page.nextPageToken })).rejects.toThrow(/belongs to a query with other filters/);
    await expect(audit.list({ pageToken: Buffer.from('p1.x.1').toString('base64url') })).rejects.toThrow(/belongs to a query with other filters/);
    await expect(audit.list({ pageToken: 'not-a-token' })).rejects.toThrow(/is not a page token this service issued/);
    const next = await audit.list({ pageSize: 5, action: 'set', pageToken: page.nextPageToken });
    expect(next.events[0]?.id).toBeGreaterThan(page.events.at(-1)?.id ?? 0n);
  });

  it('cannot be changed or emptied, even with SQL', async () => {
    const db = harness.domain.db;
    await expect(sql`UPDATE audit_events SET reason = 'rewritten'`.execute(db)).rejects.toThrow(/append-only/);
    await expect(sql`DELETE FROM audit_events`.execute(db)).rejects.toThrow(/append-only/);
    await expect(sql`TRUNCATE audit_events`.execute(db)).rejects.toThrow(/append-only/);
    expect((await audit.list({ pageSize: 1000 })).events).toHaveLength(25);
  });
});
