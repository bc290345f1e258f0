// `npm start`: the whole platform on this machine with embedded defaults. State lives under
// $SHELLWEGO_HOME (default ~/.shellwego, for root /var/lib/shellwego) and is reused: the dev PKI,
// one embedded PostgreSQL server for the three control services (unless SHELLWEGO_DATABASE_URL
// names an external one), and the local node agent's identity.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commandOf, deployables } from '@shellwego/build';
import { NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { defaultPorts, loadConfig, shellwegoHome } from '@shellwego/kit/config';
import { ensureDevPki } from '@shellwego/kit/pki';
import { type ServiceProcess, startServiceProcess, waitServing } from '@shellwego/kit/process';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import { hasIdentity, nodeAgentConfig } from '@shellwego/node-agent';
import { EmbeddedPostgres } from './launcher/embedded-postgres.js';
import { formatLogLine } from './launcher/format-log-line.js';
import { prepareVmArtifacts } from './launcher/vm-artifacts.js';
import { chooseNetwork, NETWORK_ENV, thisHost } from './launcher/vm-network.js';

const services = [
  { name: 'secrets', port: defaultPorts.secrets },
  { name: 'registry', port: defaultPorts.registry },
  { name: 'scheduler', port: defaultPorts.scheduler },
  { name: 'node-agent', port: defaultPorts.nodeAgent },
] as const;
const controlServices = ['secrets', 'registry', 'scheduler'] as const;
/** Restarts of a crashed embedded Postgres wait this long at first, doubling up to the maximum. */
const POSTGRES_RESTART_MS = { first: 1_000, max: 10_000 };

const home = shellwegoHome();
const color = process.stdout.isTTY === true;
const say = (line: string) => process.stdout.write(`${line}\n`);

await mkdir(home, { recursive: true, mode: 0o700 });
const pki = await ensureDevPki(home);
const admin = {
  caPem: await readFile(pki.caCert, 'utf8'),
  certPem: await readFile(pki.admin.cert, 'utf8'),
  keyPem: await readFile(pki.admin.key, 'utf8'),
};
say(`shellwego: state in ${home}`);

const env: NodeJS.ProcessEnv = { ...process.env, SHELLWEGO_HOME: home };
const running: ServiceProcess[] = [];
const stopping = new AbortController();
let exitCode = 0;

const externalDatabase = process.env.SHELLWEGO_DATABASE_URL;
const postgres =
  externalDatabase === undefined || externalDatabase === ''
    ? new EmbeddedPostgres({ dir: join(home, 'postgres'), onLine: (line) => say(formatLogLine('postgres', line, color)) })
    : undefined;
if (postgres !== undefined) {
  try {
    await postgres.start();
  } catch (error) {
    say(`shellwego: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  say(`shellwego: embedded Postgres ready (data in ${postgres.dataDir})`);
  void superviseDatabase(postgres);
}
const databaseUrl = postgres?.url ?? (externalDatabase as string);
for (const name of controlServices) env[`SHELLWEGO_${name.toUpperCase()}_DATABASE`] = databaseUrl;
// Nodes removed through the scheduler are refused by the other services within seconds.
for (const name of ['secrets', 'registry'] as const) env[`SHELLWEGO_${name.toUpperCase()}_REVOCATION_FEED`] = `https://127.0.0.1:${defaultPorts.scheduler}`;

/** Each service runs as it ships: its bundle (`npm start` builds what is stale first) with its settings. */
function launch(name: (typeof services)[number]['name'], launchEnv: NodeJS.ProcessEnv): void {
  const p = startServiceProcess(name, commandOf(name), { ...deployables[name].env, ...launchEnv }, (line) =>
    process.stdout.write(`${formatLogLine(name, line, color)}\n`),
  );
  running.push(p);
  void p.exited.then((result) => {
    if (stopping.signal.aborted) return;
    // Services exit 0 only after a SIGINT/SIGTERM; Ctrl-C reaches them
    // directly (same process group), sometimes before it reaches us.
    if (result === 0) return void stopAll(0);
    say(`shellwego: ${p.name} exited unexpectedly (${result}); stopping the platform`);
    void stopAll(1);
  });
}

/** A crash of the database is reported and the server restarted; the services reconnect to it. */
async function superviseDatabase(db: EmbeddedPostgres): Promise<void> {
  let delay = POSTGRES_RESTART_MS.first;
  for (;;) {
    const ended = await db.ended;
    if (stopping.signal.aborted) return;
    say(`shellwego: the embedded Postgres exited unexpectedly (${ended.code ?? ended.signal}); restarting it in ${delay / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (stopping.signal.aborted) return;
    try {
      await db.start();
      say('shellwego: the embedded Postgres is back; the services reconnect on their next query');
      delay = POSTGRES_RESTART_MS.first;
    } catch (error) {
      say(`shellwego: the embedded Postgres did not restart: ${error instanceof Error ? error.message : String(error)}`);
      delay = Math.min(delay * 2, POSTGRES_RESTART_MS.max);
    }
  }
}

async function stopAll(code: number): Promise<never> {
  if (!stopping.signal.aborted) {
    stopping.abort();
    exitCode = code;
    say('shellwego: stopping...');
    for (const p of running) p.child.kill('SIGTERM');
    const forced = setTimeout(() => {
      for (const p of running) p.child.kill('SIGKILL');
    }, 15_000);
    await Promise.all(running.map((p) => p.exited));
    clearTimeout(forced);
    // The database last: the services drain their work into it first.
    await postgres?.stop();
    say('shellwego: stopped');
  }
  process.exit(exitCode);
}

process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));
for (const name of controlServices) launch(name, env);
const artifacts = prepareVmArtifacts(env, say, stopping.signal);

// The local node agent joins like any other node: with a one-time token the admin creates
// through the scheduler (only on its first start; later it has its own certificate).
const schedulerUrl = `https://127.0.0.1:${defaultPorts.scheduler}`;
if (await waitServing(schedulerUrl, expectedService('scheduler'), admin, 60_000, stopping.signal)) {
  const { guestAgentBundle, guestImageDir } = await artifacts;
  const network = chooseNetwork(thisHost(env, guestImageDir !== undefined && env.SHELLWEGO_NODE_AGENT_VM_DRIVER !== 'process'));
  say(`shellwego: VM network ${network.enabled ? 'on (bridge, TAP devices, nftables table shellwego)' : 'off'}: ${network.reason}`);
  const agentEnv: NodeJS.ProcessEnv = {
    ...env,
    [nodeAgentConfig.envNames.guestAgentBundle]: guestAgentBundle,
    ...(guestImageDir === undefined ? {} : { [nodeAgentConfig.envNames.guestImageDir]: guestImageDir }),
    [NETWORK_ENV]: String(network.enabled),
  };
  if (!joinedBefore(env)) {
    const nodes = createMtlsClient(NodeService, { baseUrl: schedulerUrl, server: expectedService('scheduler'), tls: admin, defaultTimeoutMs: 10_000 });
    const { token } = await nodes.createJoinToken({ labels: {}, ttl: { seconds: 600n } });
    agentEnv[nodeAgentConfig.envNames.joinToken] = token;
  }
  if (!stopping.signal.aborted) launch('node-agent', agentEnv);
}

/** True when the node agent has its own certificate already (a bad setting is the agent's to report). */
function joinedBefore(agentEnv: NodeJS.ProcessEnv): boolean {
  try {
    return hasIdentity(loadConfig(nodeAgentConfig, { env: agentEnv }).stateDir);
  } catch {
    return false;
  }
}

const ready = await Promise.all(
  services.map((s) =>
    waitServing(`https://127.0.0.1:${s.port}`, s.name === 'node-agent' ? { kind: 'node' } : expectedService(s.name), admin, 60_000, stopping.signal),
  ),
);
if (stopping.signal.aborted) await new Promise(() => undefined);
if (ready.every(Boolean)) {
  say('');
  say('shellwego is up:');
  for (const s of services) say(`  ${s.name.padEnd(10)} https://127.0.0.1:${s.port}`);
  say(`  database   ${postgres === undefined ? 'external (SHELLWEGO_DATABASE_URL)' : `embedded Postgres, socket in ${postgres.socketDir}`}`);
  say(`  CA and admin certificate in ${home}/pki`);
  say('  try: npx shellwego status     (Ctrl-C stops everything)');
  say('');
} else {
  const late = services.filter((_, i) => !ready[i]).map((s) => s.name);
  say(`shellwego: ${late.join(', ')} did not become SERVING within 60 s`);
  await stopAll(1);
}
