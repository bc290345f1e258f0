// STAND-IN FOR FIRECRACKER (test only; this machine has no Firecracker and no usable KVM).
// Started by the firecracker driver in place of the `firecracker` binary, with the same flags
// (--api-sock, --id). It serves the API on the Unix socket like Firecracker: every PUT body is
// checked against the official schema (400 + fault_message when it does not fit, as Firecracker
// answers bad input), requests are recorded for the test, and InstanceStart "boots" a VM: the
// real bundled guest agent starts as a local process and FirecrackerVsockStandIn plays the hybrid
// vsock device on the configured uds_path. SendCtrlAltDel shuts the "VM" down and exits, as
// Firecracker does when a guest booted with reboot=k resets.
//
// Stand-in-only flags (before Firecracker's): --stand-in-record <jsonl> --stand-in-schema <yaml>
// --stand-in-guest-agent <bundle> [--stand-in-fail <api path>].
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { FirecrackerSchema } from '@shellwego/testing/firecracker-schema';
import { FirecrackerVsockStandIn } from '@shellwego/testing/vm-channel-stand-ins';

function flag(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index < 0 ? undefined : process.argv[index + 1];
}

function required(name: string): string {
  const value = flag(name);
  if (value === undefined) {
    process.stderr.write(`firecracker stand-in: ${name} is required\n`);
    process.exit(2);
  }
  return value;
}

const apiSocket = required('--api-sock');
const id = flag('--id') ?? 'anonymous-instance';
const recordPath = required('--stand-in-record');
const validator = FirecrackerSchema.load(required('--stand-in-schema'), { rejectUndeclaredProperties: true });
const guestAgentBundle = required('--stand-in-guest-agent');
const failPath = flag('--stand-in-fail');

if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) {
  process.stderr.write(`Invalid instance ID: ${id}\n`);
  process.exit(1);
}

const config: Record<string, Record<string, unknown>> = {};
let guestAgent: ChildProcess | undefined;
let vsockDevice: FirecrackerVsockStandIn | undefined;
let started = false;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    void handle(req, Buffer.concat(chunks).toString('utf8'))
      .then(({ status, fault }) => reply(res, status, fault))
      .catch((err: unknown) => reply(res, 500, `stand-in: ${(err as Error).message}`));
  });
});

function reply(res: ServerResponse, status: number, fault: string | undefined): void {
  if (fault === undefined) {
    res.writeHead(status).end();
  } else {
    const body = JSON.stringify({ fault_message: fault });
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(body);
  }
}

async function handle(req: IncomingMessage, text: string): Promise<{ status: number; fault?: string }> {
  const method = req.method ?? '';
  const path = req.url ?? '';
  let body: unknown;
  try {
    body = text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return record(method, path, text, 400, 'stand-in: the body is not JSON');
  }
  const issues = validator.validateRequest(method, path, body);
  if (issues.length > 0) {
    return record(method, path, body, 400, issues.map((i) => `${i.at}: ${i.message}`).join('; '));
  }
  if (path === failPath) {
    return record(method, path, body, 400, `stand-in: injected failure for ${path}`);
  }
  const fields = body as Record<string, unknown>;
  if (path === '/actions') {
    return record(method, path, body, ...(await action(String(fields.action_type))));
  }
  if (started) {
    return record(method, path, body, 400, 'The requested operation is not supported after starting the microVM.');
  }
  for (const key of ['kernel_image_path', 'initrd_path', 'path_on_host']) {
    // Firecracker opens these files when the resource is configured.
    if (typeof fields[key] === 'string' && !existsSync(fields[key])) {
      return record(method, path, body, 400, `${key} ${String(fields[key])}: No such file or directory (os error 2)`);
    }
  }
  config[path] = fields;
  return record(method, path, body, 204);
}

async function action(type: string): Promise<[number, string?]> {
  if (type === 'InstanceStart') {
    const boot = config['/boot-source'];
    const vsock = config['/vsock'];
    if (boot === undefined) {
      return [400, 'Cannot start microvm without kernel configuration.'];
    }
    if (started) {
      return [400, 'The requested operation is not supported after starting the microVM.'];
    }
    started = true;
    const port = /shellwego\.channel=vsock:(\d+)/.exec(String(boot.boot_args))?.[1];
    if (vsock !== undefined && port !== undefined) {
      await bootGuest(String(vsock.uds_path), Number(port));
    }
    return [204];
  }
  if (type === 'SendCtrlAltDel') {
    if (!started) {
      return [400, 'The requested operation is not supported before starting the microVM.'];
    }
    setImmediate(() => void shutDown(0));
    return [204];
  }
  return [204];
}

/** The "VM": the real guest agent in process mode, reachable through the hybrid vsock stand-in. */
async function bootGuest(udsPath: string, guestPort: number): Promise<void> {
  const guestSocketPath = join(dirname(recordPath), `${id}-guest.sock`);
  const agent = spawn(process.execPath, [guestAgentBundle, '--channel', `unix-listen:${guestSocketPath}`, '--grace-period-ms', '1000'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  guestAgent = agent;
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    agent.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('guest agent serving GuestService')) {
        resolve();
      }
    });
    agent.once('exit', (code) => reject(new Error(`guest agent exited with ${code}: ${seen.slice(-500)}`)));
  });
  vsockDevice = await FirecrackerVsockStandIn.listen({ udsPath, guestPort, guestSocketPath });
}

function record(method: string, path: string, body: unknown, status: number, fault?: string): { status: number; fault?: string } {
  appendFileSync(recordPath, `${JSON.stringify({ id, method, path, body, status, ...(fault !== undefined ? { fault } : {}) })}\n`);
  return fault === undefined ? { status } : { status, fault };
}

async function shutDown(code: number): Promise<never> {
  const agent = guestAgent;
  if (agent !== undefined && agent.exitCode === null && agent.signalCode === null) {
    const gone = new Promise((resolve) => agent.once('exit', resolve));
    agent.kill('SIGTERM');
    await gone;
  }
  await vsockDevice?.close();
  await new Promise((resolve) => server.close(resolve));
  process.exit(code);
}

process.on('SIGTERM', () => void shutDown(0));
server.listen(apiSocket);
