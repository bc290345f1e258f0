// Traces across every hop, proven on `npm start` as an operator runs it: a stand-in OTLP/HTTP
// collector (JSON), the standard OTEL_EXPORTER_OTLP_ENDPOINT pointing at it for npm start and
// the CLI, an app with a canary secret deployed through the CLI (node agent on the process
// driver). The deploy is one trace: the CLI's span and the spans of the scheduler, registry,
// node agent, secrets service and guest agent processes share its trace id, each server span
// the child of its caller's span. Log lines of that work name the trace. No exported byte
// holds the canary.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { freePort } from '@shellwego/testing/free-port';
import { busyboxMissing } from '@shellwego/testing/images/busybox';
import { leaks } from '@shellwego/testing/leak-scan/leak-scan';
import type { EventStream } from '@shellwego/testing/scheduler/event-stream';
import { describe, expect, it } from 'vitest';
import { canaryImageArchive } from '../e2e/support/canary-image.js';
import { instanceReached } from '../e2e/support/instance-watch.js';
import { OtlpReceiver } from '../observability/support/otlp-receiver.js';
import { NpmStart, platformPortsBusy, shellwego } from './support/npm-start.js';
import { followEvents, localNodeReady } from './support/platform-admin.js';

const skip = busyboxMissing();
if (skip !== undefined) console.warn(`[tracing] SKIPPING: ${skip}`);

const SERVER = 2;
const CLIENT = 3;

describe.skipIf(skip !== undefined)('OpenTelemetry traces across every process of npm start', () => {
  it('makes one app deploy one trace with spans from the CLI and five platform processes, carrying no secret', { timeout: 420_000 }, async () => {
    const busy = await platformPortsBusy();
    if (busy !== undefined) throw new Error(busy);
    const receiver = await OtlpReceiver.start();
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url };
    const home = await mkdtemp(join(tmpdir(), 'swtrace-'));
    let launch: NpmStart | undefined;
    let events: EventStream | undefined;
    try {
      launch = NpmStart.start({ home, env: { SHELLWEGO_NODE_AGENT_VM_DRIVER: 'process', SHELLWEGO_DATABASE_URL: '', ...otel } });
      await launch.waitFor('shellwego is up', 300_000);
      await localNodeReady(home, 60_000);
      events = await followEvents(home);

      const archive = join(home, 'traced.tar');
      await writeFile(archive, await canaryImageArchive('traced:1'));
      expect((await shellwego(home, ['image', 'import', archive], undefined, otel)).exitCode).toBe(0);
      const canary = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);
      const set = await shellwego(home, ['secret', 'set', 'CANARY', '--app', 'traced'], canary, otel);
      expect(set.exitCode, set.stderr).toBe(0);
      const port = await freePort();
      const deploy = await shellwego(
        home,
        [
          'app',
          'deploy',
          'traced',
          '--image',
          'traced:1',
          '--secret',
          'CANARY',
          '--env',
          `PORT=${port}`,
          '--health',
          `tcp:${port}`,
          '--memory',
          '64Mi',
          '--cpu',
          '250m',
        ],
        undefined,
        otel,
      );
      expect(deploy.exitCode, deploy.stderr).toBe(0);
      await instanceReached(events, 'traced', InstanceState.HEALTHY, 120_000);

      await receiver.waitFor((spans) => spans.some((s) => s.service === 'shellwego-cli' && s.name === 'shellwego app deploy'), 30_000, "the CLI's deploy span");
      const root = receiver.spans.find((s) => s.service === 'shellwego-cli' && s.name === 'shellwego app deploy');
      const traceId = root?.traceId ?? 'none';
      const wanted = ['shellwego-cli', 'scheduler', 'registry', 'node-agent', 'secrets', 'guest-agent'];
      const servicesOf = (spans: readonly { traceId: string; service: string }[]) => new Set(spans.filter((s) => s.traceId === traceId).map((s) => s.service));
      await receiver.waitFor((spans) => wanted.every((name) => servicesOf(spans).has(name)), 30_000, `spans of ${wanted.join(', ')} in trace ${traceId}`);
      const trace = receiver.spans.filter((s) => s.traceId === traceId);
      const processes = new Set(trace.map((s) => `${s.service}/${s.pid}`));
      console.log(`[tracing] trace ${traceId}: ${trace.length} spans from ${[...processes].join(', ')}`);
      expect(processes.size).toBeGreaterThanOrEqual(6);

      // The hops, each server span the child of its caller's client span.
      const byId = new Map(trace.map((s) => [s.spanId, s]));
      const hop = (service: string, name: string) => {
        const server = trace.find((s) => s.service === service && s.kind === SERVER && s.name === name);
        expect(server, `${service} ${name}`).toBeDefined();
        const caller = byId.get(server?.parentSpanId ?? '');
        expect(caller?.kind, `${service} ${name}: parent is a client span`).toBe(CLIENT);
        expect(caller?.name).toBe(name);
        return caller?.service;
      };
      expect(hop('scheduler', 'shellwego.scheduler.v1.AppService/DeployApp')).toBe('shellwego-cli');
      expect(hop('registry', 'shellwego.registry.v1.RegistryService/ResolveImage')).toBe('scheduler');
      expect(hop('registry', 'shellwego.registry.v1.RegistryService/FetchRootfs')).toBe('node-agent');
      expect(hop('secrets', 'shellwego.secrets.v1.SecretsService/ResolveSecrets')).toBe('node-agent');
      expect(hop('guest-agent', 'shellwego.guest.v1.GuestService/Run')).toBe('node-agent');
      const server = trace.find((s) => s.name === 'shellwego.scheduler.v1.AppService/DeployApp' && s.kind === SERVER);
      expect(server?.attributes['rpc.grpc.status_code']).toBe(0);

      // Log lines written for this deploy name its trace (the launcher shows a JSON field as key=value).
      const traced = launch.lines.filter((line) => line.includes(`trace_id=${traceId}`));
      expect(traced.some((line) => line.includes('rpc=shellwego.scheduler.v1.AppService/DeployApp'))).toBe(true);
      expect(traced.some((line) => line.includes('rpc=shellwego.secrets.v1.SecretsService/ResolveSecrets'))).toBe(true);
      expect(traced.some((line) => line.includes('workload started'))).toBe(true);

      // No span, attribute or anything else exported holds the secret (the detector does find it).
      expect(receiver.rejected).toEqual([]);
      expect(receiver.bodies.length).toBeGreaterThan(0);
      expect(receiver.bodies.filter((body) => leaks(body, canary))).toEqual([]);
      expect(leaks(`{"x":"${canary.toString('base64')}"}`, canary)).toBe(true);

      expect((await shellwego(home, ['app', 'rm', 'traced'])).exitCode).toBe(0);
      await events.close();
      events = undefined;
      const { exit, leftovers } = await launch.stop();
      expect([0, 'SIGINT']).toContain(exit);
      expect(leftovers).toEqual([]);
    } finally {
      await events?.close();
      launch?.kill();
      await receiver.close();
      await rm(home, { recursive: true, force: true });
    }
  });
});
