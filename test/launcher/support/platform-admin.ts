// What the launcher suites do to a running `npm start` as its admin: the admin certificate from
// the home's PKI, an event follower on the scheduler, the local node becoming READY.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppService } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { defaultPorts } from '@shellwego/kit/config';
import { createMtlsClient, expectedService, type TlsMaterial } from '@shellwego/kit/rpc';
import { EventStream } from '@shellwego/testing/scheduler/event-stream';
import { shellwego } from './npm-start.js';

export async function adminTls(home: string): Promise<TlsMaterial> {
  const pki = join(home, 'pki');
  return {
    caPem: await readFile(join(pki, 'ca.crt'), 'utf8'),
    certPem: await readFile(join(pki, 'admin.crt'), 'utf8'),
    keyPem: await readFile(join(pki, 'admin.key'), 'utf8'),
  };
}

/** Follows the scheduler's events from now on (close() it). */
export async function followEvents(home: string): Promise<EventStream> {
  return new EventStream(
    createMtlsClient(AppService, { baseUrl: `https://127.0.0.1:${defaultPorts.scheduler}`, server: expectedService('scheduler'), tls: await adminTls(home) }),
  );
}

/** Waits until `shellwego node ls` shows a READY node (the launcher's local agent joins by itself). */
export async function localNodeReady(home: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    const ls = await shellwego(home, ['node', 'ls', '-o', 'json']);
    last = ls.stdout + ls.stderr;
    if (ls.exitCode === 0 && (JSON.parse(ls.stdout) as { state?: string }[]).some((node) => node.state === 'NODE_STATE_READY')) return;
    await sleep(500);
  }
  throw new Error(`no node became READY within ${timeoutMs / 1000} s; last node ls:\n${last}`);
}
