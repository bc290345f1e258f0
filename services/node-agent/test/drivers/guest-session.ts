// Test helper: talk to the guest agent behind a VmHandle's channel the way the node agent will
// (createGuestTransport + GuestService), and collect a workload's output.

import { readdir, readFile } from 'node:fs/promises';
import { create } from '@bufbuild/protobuf';
import { type Client, createClient } from '@connectrpc/connect';
import { OutputStream } from '@shellwego/contracts/common/v1/workload_pb';
import { GuestService, RunRequestSchema, type WaitResponse } from '@shellwego/contracts/guest/v1/guest_pb';
import { createGuestTransport, type GuestClientChannel, type GuestTransport } from '@shellwego/kit/vm-channel';

export interface GuestSession {
  readonly client: Client<typeof GuestService>;
  readonly transport: GuestTransport;
}

export function openGuest(channel: GuestClientChannel, connectTimeoutMs = 10_000): GuestSession {
  const transport = createGuestTransport(channel, { connectTimeoutMs });
  return { transport, client: createClient(GuestService, transport) };
}

export interface WorkloadResult {
  readonly stdout: string;
  readonly exitCode: number | undefined;
  /** Run call -> first output byte seen through Wait. */
  readonly firstOutputMs: number;
  readonly runMs: number;
}

/** Runs argv with the secret env (wiped afterwards) and follows Wait until the workload exits. */
export async function runToExit(client: Client<typeof GuestService>, argv: string[], secretEnv: Record<string, Buffer>): Promise<WorkloadResult> {
  const started = performance.now();
  await client.run(create(RunRequestSchema, { argv, secretEnv }));
  const runMs = performance.now() - started;
  for (const value of Object.values(secretEnv)) {
    value.fill(0);
  }
  const events: WaitResponse[] = [];
  let firstOutputMs = -1;
  let exitCode: number | undefined;
  const abort = new AbortController();
  try {
    for await (const event of client.wait({}, { signal: abort.signal })) {
      events.push(event);
      if (event.event.case === 'output' && firstOutputMs < 0) {
        firstOutputMs = performance.now() - started;
      }
      if (event.event.case === 'exited') {
        exitCode = event.event.value.exitCode;
        abort.abort();
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) {
      throw err;
    }
  }
  const stdout = events
    .flatMap((e) => (e.event.case === 'output' && e.event.value.stream === OutputStream.STDOUT ? [Buffer.from(e.event.value.data).toString('utf8')] : []))
    .join('');
  return { stdout, exitCode, firstOutputMs, runMs };
}

/** Every file under dir whose content contains needle. */
export async function filesContaining(dir: string, needle: Buffer): Promise<string[]> {
  const hits: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && (await readFile(`${entry.parentPath}/${entry.name}`)).includes(needle)) {
      hits.push(`${entry.parentPath}/${entry.name}`);
    }
  }
  return hits;
}
