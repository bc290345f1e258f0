// The secrets service's own figures. Resolves (granted, or denied with the stable code their
// audit entry starts with) and writes are counted as they are audited; rotation progress and
// the current master key's encryption budget are read from the database when scraped. Labels
// hold outcomes, reason codes and master key ids: never a secret's name or value, an app or an
// instance.
import { Counter, Gauge, type MetricsRegistry } from '@shellwego/kit/metrics';
import type { AuditEntry } from './audit-log.js';
import type { KeyRotation, MasterKeyStatus } from './key-rotation.js';

/** A reason code is a short kebab-case word; anything else would be an unbounded label. */
const REASON_CODE = /^[a-z][a-z0-9-]{0,40}$/;
const STATUS_REUSE_MS = 1_000;

export interface SecretsMetrics {
  /** Hears of every audit entry once it is written. */
  audited(entry: AuditEntry): void;
}

export function createSecretsMetrics(registry: MetricsRegistry, rotation: () => KeyRotation | undefined, encryptionLimit: number): SecretsMetrics {
  const registers = [registry];
  // One status read (three queries) serves all the gauges of one scrape.
  let read: { at: number; status: Promise<MasterKeyStatus | undefined> } | undefined;
  const status = (): Promise<MasterKeyStatus | undefined> => {
    if (read === undefined || performance.now() - read.at > STATUS_REUSE_MS)
      read = { at: performance.now(), status: rotation()?.status() ?? Promise.resolve(undefined) };
    return read.status;
  };
  const resolves = new Counter({
    name: 'shellwego_secrets_resolves_total',
    help: 'ResolveSecrets calls by outcome (granted, denied) and, when denied, the reason code of the audit entry (not-a-node, invalid-grant, not-found, expired, ...; none when granted).',
    labelNames: ['outcome', 'reason'],
    registers,
  });
  const writes = new Counter({
    name: 'shellwego_secrets_writes_total',
    help: 'Secret writes by action (set, delete) and outcome, as audited.',
    labelNames: ['action', 'outcome'],
    registers,
  });
  const rotations = new Counter({
    name: 'shellwego_secrets_key_rotations_total',
    help: 'Master key rotations requested, by outcome (granted, denied), as audited.',
    labelNames: ['outcome'],
    registers,
  });
  new Gauge({
    name: 'shellwego_secrets_rewrap_running',
    help: '1 while a re-wrap of data keys under a new master key is running (on any replica).',
    registers,
    async collect() {
      this.set((await status())?.rewrapRunning ? 1 : 0);
    },
  });
  new Gauge({
    name: 'shellwego_secrets_rewrap_data_keys',
    help: 'Data keys of the latest re-wrap: state done, or planned (all it set out to re-wrap).',
    labelNames: ['state'],
    registers,
    async collect() {
      const now = await status();
      this.set({ state: 'done' }, Number(now?.rewrapDone ?? 0n));
      this.set({ state: 'planned' }, Number(now?.rewrapTotal ?? 0n));
    },
  });
  new Gauge({
    name: 'shellwego_secrets_encryption_budget_used_ratio',
    help: 'Share of the current master key encryption limit spent (rotate the master key well before 1).',
    registers,
    async collect() {
      const now = await status();
      const current = now?.versions.find((version) => version.kekId === now.currentKekId);
      this.set(Number(current?.encryptions ?? 0n) / encryptionLimit);
    },
  });
  new Gauge({
    name: 'shellwego_secrets_master_key_encryptions',
    help: 'Encryptions made under each master key version still in use, by key id.',
    labelNames: ['kek'],
    registers,
    async collect() {
      this.reset();
      const now = await status();
      for (const version of now?.versions ?? []) this.set({ kek: version.kekId }, Number(version.encryptions));
    },
  });
  return {
    audited(entry) {
      if (entry.action === 'resolve') resolves.inc({ outcome: entry.outcome, reason: entry.outcome === 'granted' ? 'none' : reasonCode(entry.reason) });
      else if (entry.action === 'rotate') rotations.inc({ outcome: entry.outcome });
      else writes.inc({ action: entry.action, outcome: entry.outcome });
    },
  };
}

function reasonCode(reason: string | undefined): string {
  const code = (reason ?? '').split(':', 1)[0]?.trim() ?? '';
  return REASON_CODE.test(code) ? code : 'other';
}
