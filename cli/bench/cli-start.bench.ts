// How long a `shellwego` command takes from the shell's point of view: median wall time of
// `shellwego --help` and `shellwego status`, run as `node cli/bin/shellwego.js ...` (what
// `npx shellwego` and node_modules/.bin/shellwego run, bundle freshness check included), next to
// `node -e 0` measured in the same rounds. The rounds interleave the three, so load on a shared
// machine falls on all of them alike.
//
// `status` runs against nothing: its four endpoints are ports no one listens on, with a
// development PKI in a temporary home. It then does all of its client-side work (reads the TLS
// files, builds the four mTLS transports, connects, prints the table) and fails fast with
// connection refused, exit code 1; a running platform would add the services' answers and need
// Postgres, neither of which is the CLI's start-up. Each run's output is checked, so a CLI that
// fails early cannot pass for a fast one.
// Run directly (`npx tsx cli/bench/cli-start.bench.ts`) for a table, or `npm run bench cli-start`.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevPki } from '@shellwego/kit/pki';
import type { BenchResult, BenchTarget } from '@shellwego/testing/bench/bench-result';
import { runIfMain } from '@shellwego/testing/bench/run-bench';
import { freePort } from '@shellwego/testing/free-port';
import { cliEntry } from '@shellwego/testing/repo';
import { buildCli } from '../build.js';

const RUNS = 20;
const WARMUPS = 2;
/** From the task that introduced the bundle: a command starts in well under 300 ms. */
const TARGET: BenchTarget = { on: 'value', bound: 'below', value: 300, unit: 'ms' };

interface Sample {
  readonly ms: number;
  readonly code: number | null;
  readonly stdout: string;
}

/** Runs `node ...args` to its exit, timing it from spawn to the child's exit. */
function timed(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = performance.now() - started;
      // A rebuild or a fall-back to tsx would be measured instead of the bundle.
      if (stderr.includes('note:')) reject(new Error(`the CLI did not run its bundle: ${stderr.trim()}`));
      else resolve({ ms, code, stdout });
    });
  });
}

interface Case {
  readonly name: string;
  readonly args: readonly string[];
  /** Throws when the run did not do what the case measures. */
  readonly check: (sample: Sample) => void;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
};

export async function run(): Promise<BenchResult[]> {
  await buildCli();
  const home = await mkdtemp(join(tmpdir(), 'shellwego-cli-bench-'));
  try {
    await ensureDevPki(home);
    const nowhere = async () => `https://127.0.0.1:${await freePort()}`;
    const env = {
      ...process.env,
      SHELLWEGO_HOME: home,
      SHELLWEGO_SCHEDULER_URL: await nowhere(),
      SHELLWEGO_SECRETS_URL: await nowhere(),
      SHELLWEGO_REGISTRY_URL: await nowhere(),
      SHELLWEGO_NODE_AGENT_URL: await nowhere(),
    };
    const baseline: Case = { name: 'node -e 0', args: ['-e', '0'], check: () => {} };
    const cases: Case[] = [
      {
        name: 'shellwego --help',
        args: [cliEntry, '--help'],
        check: (s) => {
          if (s.code !== 0 || !s.stdout.includes('Usage: shellwego')) throw new Error(`--help exited ${s.code}: ${s.stdout.slice(0, 200)}`);
        },
      },
      {
        name: 'shellwego status (nothing running)',
        args: [cliEntry, 'status'],
        check: (s) => {
          if (s.code !== 1 || (s.stdout.match(/UNREACHABLE \(.*ECONNREFUSED/g) ?? []).length !== 4) {
            throw new Error(`status exited ${s.code} without four refused connections: ${s.stdout.slice(0, 400)}`);
          }
        },
      },
    ];
    const times = new Map<Case, number[]>([baseline, ...cases].map((c) => [c, []]));
    for (let round = 0; round < WARMUPS + RUNS; round++) {
      for (const c of [baseline, ...cases]) {
        const sample = await timed(c.args, env);
        c.check(sample);
        if (round >= WARMUPS) times.get(c)?.push(sample.ms);
      }
    }
    const baselineMs = Math.round(median(times.get(baseline) ?? []));
    return cases.map((c) => ({
      name: `${c.name}, median of ${RUNS}`,
      value: Math.round(median(times.get(c) ?? [])),
      unit: 'ms',
      baseline: { name: 'node -e 0', value: baselineMs },
      target: TARGET,
    }));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

await runIfMain(import.meta.url, run);
