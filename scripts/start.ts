// `npm start`: the whole platform on this machine with embedded defaults.
// State lives under $SHELLWEGO_HOME (default ~/.shellwego) and is reused.
import { mkdir, readFile } from 'node:fs/promises';
import { defaultPorts, shellwegoHome } from '../lib/config/index.js';
import { ensureDevPki } from '../lib/pki/index.js';
import { formatLogLine } from './launcher/format-log-line.js';
import { startServiceProcess, type ServiceProcess } from './launcher/service-process.js';
import { waitServing } from './launcher/wait-serving.js';

const services = [
  { name: 'secrets', port: defaultPorts.secrets },
  { name: 'registry', port: defaultPorts.registry },
  { name: 'scheduler', port: defaultPorts.scheduler },
  { name: 'node-agent', port: defaultPorts.nodeAgent },
] as const;

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

const env = { ...process.env, SHELLWEGO_HOME: home };
const running: ServiceProcess[] = services.map((s) =>
  startServiceProcess(s.name, env, (line) => process.stdout.write(`${formatLogLine(s.name, line, color)}\n`)),
);
const stopping = new AbortController();
let exitCode = 0;

async function stopAll(code: number): Promise<never> {
  if (!stopping.signal.aborted) {
    stopping.abort();
    exitCode = code;
    say('shellwego: stopping...');
    for (const p of running) p.child.kill('SIGTERM');
    const forced = setTimeout(() => running.forEach((p) => p.child.kill('SIGKILL')), 15_000);
    await Promise.all(running.map((p) => p.exited));
    clearTimeout(forced);
    say('shellwego: stopped');
  }
  process.exit(exitCode);
}

process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));
for (const p of running) {
  void p.exited.then((result) => {
    if (stopping.signal.aborted) return;
    // Services exit 0 only after a SIGINT/SIGTERM; Ctrl-C reaches them
    // directly (same process group), sometimes before it reaches us.
    if (result === 0) return void stopAll(0);
    say(`shellwego: ${p.name} exited unexpectedly (${result}); stopping the platform`);
    void stopAll(1);
  });
}

const ready = await Promise.all(
  services.map((s) => waitServing(`https://127.0.0.1:${s.port}`, admin, 60_000, stopping.signal)),
);
if (stopping.signal.aborted) await new Promise(() => undefined);
if (ready.every(Boolean)) {
  say('');
  say('shellwego is up:');
  for (const s of services) say(`  ${s.name.padEnd(10)} https://127.0.0.1:${s.port}`);
  say(`  CA and admin certificate in ${home}/pki`);
  say('  try: npx shellwego status     (Ctrl-C stops everything)');
  say('');
} else {
  const late = services.filter((_, i) => !ready[i]).map((s) => s.name);
  say(`shellwego: ${late.join(', ')} did not become SERVING within 60 s`);
  await stopAll(1);
}
