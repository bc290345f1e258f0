// Crash injection on the secrets service (issue 14): the process is killed with SIGKILL in the
// middle of SetSecret traffic and in the middle of a master-key re-wrap, on its embedded database
// (what `npm start` runs), then started again. Afterwards every write a client saw acknowledged
// reads back with exactly its value, the one write in flight at the kill reads back as either its
// old or its new value, and an interrupted re-wrap finishes with every secret still readable.
// Kill points are seeded (printed) so a failure can be replayed.
import { randomBytes } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { SecretScopeKind } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { fuzzSettings } from '@shellwego/testing/fuzz/fuzz-run';
import { TestPlatform } from '@shellwego/testing/platform';
import { type SecretsClients, secretsClients } from '@shellwego/testing/secrets-clients';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const APP = 'crashy';
const NAMES = Array.from({ length: 40 }, (_, i) => `CRASH_${i}`);
const KILLS = 3;

let platform: TestPlatform | undefined;
let clients: SecretsClients | undefined;
/** Per name: values a reader may find (the last acknowledged one, plus any write whose answer was lost). */
const acceptable = new Map<string, Set<string>>();

beforeAll(async () => {
  // One data key per re-wrap transaction, so that a kill lands in the middle of a re-wrap.
  platform = await TestPlatform.start({ services: ['secrets'], env: { SHELLWEGO_SECRETS_REWRAP_BATCH_SIZE: '1' } });
  clients = await secretsClients(platform);
}, 300_000);

afterAll(async () => {
  await platform?.stop();
});

async function set(name: string, value: string): Promise<'acknowledged' | 'lost'> {
  const c = clients as SecretsClients;
  try {
    await c.admin.setSecret({ scope: { kind: SecretScopeKind.APP, app: APP }, name, value: Buffer.from(value) }, { timeoutMs: 10_000 });
    acceptable.set(name, new Set([value]));
    return 'acknowledged';
  } catch (error) {
    // The process died under the call: the write may or may not have been committed.
    const code = ConnectError.from(error).code;
    expect([Code.Unavailable, Code.DeadlineExceeded], `a write during a crash failed with ${Code[code]}`).toContain(code);
    acceptable.set(name, new Set([...(acceptable.get(name) ?? []), value]));
    return 'lost';
  }
}

/** Every name resolves to one of its acceptable values. */
async function expectEveryValueIntact(): Promise<void> {
  const c = clients as SecretsClients;
  const names = [...acceptable.keys()];
  const { secrets } = await c.node.resolveSecrets({ grant: c.grant({ app: APP, secretNames: names }) });
  const got = new Map(secrets.map((s) => [s.name, Buffer.from(s.value).toString()]));
  const wrong = names.filter((name) => !(acceptable.get(name) as Set<string>).has(got.get(name) ?? '<missing>'));
  expect(wrong, 'secrets lost or changed by the crash').toEqual([]);
}

async function killAndRestart(): Promise<number> {
  const p = platform as TestPlatform;
  await p.stopService('secrets', 'SIGKILL');
  const started = performance.now();
  await p.restartService('secrets');
  clients = await secretsClients(p);
  return Math.round(performance.now() - started);
}

describe('the secrets service killed with SIGKILL', () => {
  it('loses no acknowledged SetSecret and changes no value, across kills in the middle of writes', { timeout: 600_000 }, async () => {
    const { seed } = fuzzSettings(1);
    const delays = fc.sample(fc.integer({ min: 50, max: 1_500 }), { seed, numRuns: KILLS });
    for (const name of NAMES) await set(name, `initial-${name}`);
    for (const [round, delayMs] of delays.entries()) {
      let writing = true;
      let writes = 0;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          const name = NAMES[i % NAMES.length] as string;
          const outcome = await set(name, `round-${round}-${i}-${randomBytes(8).toString('hex')}`);
          writes++;
          if (outcome === 'lost') return;
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      const restartMs = await killAndRestart();
      writing = false;
      await writer;
      await expectEveryValueIntact();
      console.log(
        `[secrets crash] seed ${seed}, kill ${round + 1}/${KILLS} after ${delayMs} ms and ${writes} writes: serving again in ${restartMs} ms, every value intact`,
      );
    }
  });

  it('finishes a master-key re-wrap interrupted by a kill, with every secret still readable', { timeout: 600_000 }, async () => {
    const c = () => clients as SecretsClients;
    // Enough secrets that the re-wrap takes a while.
    for (let i = 0; i < 200; i++) await set(`REWRAP_${i}`, `rewrap-${i}-${randomBytes(4).toString('hex')}`);
    const before = await c().admin.getMasterKeyStatus({});
    await c().admin.rotateMasterKey({});
    // Kill once the re-wrap has done some of its work and before it has finished.
    let caught = false;
    for (let i = 0; i < 500; i++) {
      const status = await c().admin.getMasterKeyStatus({});
      if (status.rewrapRunning && status.rewrapDone > 0n && status.rewrapDone < status.rewrapTotal) {
        caught = true;
        break;
      }
      if (!status.rewrapRunning && status.currentKekId !== before.currentKekId) break;
    }
    expect(caught, 'the kill must land in the middle of the re-wrap').toBe(true);
    const started = performance.now();
    await killAndRestart();
    let status = await c().admin.getMasterKeyStatus({});
    while (status.rewrapRunning || status.rewrapDone < status.rewrapTotal) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = await c().admin.getMasterKeyStatus({});
      if (performance.now() - started > 120_000) throw new Error(`the re-wrap did not finish after the restart: ${status.rewrapDone}/${status.rewrapTotal}`);
    }
    expect(status.currentKekId).not.toBe(before.currentKekId);
    await expectEveryValueIntact();
    console.log(
      `[secrets crash] re-wrap of ${status.rewrapTotal} data keys killed mid-way: complete ${Math.round(performance.now() - started)} ms after the kill, every value intact`,
    );
  });
});
