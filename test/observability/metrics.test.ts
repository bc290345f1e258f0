// Every service's /metrics after real traffic: the platform as separate processes over mTLS (node
// agent on the process driver), an app with a canary secret deployed through the CLI and removed,
// read RPCs, a refused call and a NOT_FOUND. Each endpoint is parsed by Prometheus's own parsers
// (promtool, which also holds it to the naming conventions, and the reference Python parser); the
// RPC counters and latency histograms carry the methods called with their codes, the process and
// database metrics are there, and neither the canary secret nor a join token appears anywhere.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Code, ConnectError } from '@connectrpc/connect';
import { AppService } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import { freePort } from '@shellwego/testing/free-port';
import { busyboxMissing } from '@shellwego/testing/images/busybox';
import { leaks } from '@shellwego/testing/leak-scan/leak-scan';
import { scrape } from '@shellwego/testing/scrape-metrics';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { canaryFlow } from '../e2e/support/canary-flow.js';
import { NodePlatform } from '../e2e/support/node-platform.js';
import { Prometheus } from './support/prometheus-server.js';
import { type Family, parseMetrics, promtoolProblems, type Sample, samplesOf } from './support/prometheus-text.js';

const observabilityDir = fileURLToPath(new URL('../../deploy/observability/', import.meta.url));
const skip = busyboxMissing();
if (skip !== undefined) console.warn(`[metrics] SKIPPING: ${skip}`);

let platform: NodePlatform | undefined;
/** The metrics URL of each service, once the first test has made traffic. */
let endpoints: Record<'scheduler' | 'secrets' | 'registry' | 'node-agent', string> | undefined;
let prometheus: Prometheus | undefined;
afterAll(async () => {
  await prometheus?.stop();
  await platform?.stop();
});

const has = (samples: readonly Sample[], labels: Record<string, string>) =>
  samples.filter((s) => Object.entries(labels).every(([key, value]) => s.labels[key] === value));

describe.skipIf(skip !== undefined)('Prometheus metrics of every service after real traffic', () => {
  it('serves parseable, conventional metrics with per-RPC counts, latencies and codes, and no secret', { timeout: 180_000 }, async () => {
    platform = await NodePlatform.start();
    const p = platform;
    await p.addAgent({ key: 'proc', driver: 'process' });
    const flow = await canaryFlow(p, { agentKey: 'proc', app: 'metered', port: await freePort(), memory: '64Mi', healthyTimeoutMs: 60_000 });
    const { token } = await p.nodes.createJoinToken({});
    // An app no node can take (it requires a label none has) stays PENDING with its reason.
    const stuck = await p.cli(['app', 'deploy', 'stuck', '--image', 'metered:1', '--memory', '64Mi', '--label', 'zone=nowhere']);
    expect(stuck.exitCode, stuck.stderr).toBe(0);
    // An admin asking for secret values is refused (and audited) as not a node.
    await expect(p.secrets.resolveSecrets({})).rejects.toMatchObject({ code: Code.PermissionDenied });
    await p.registry.garbageCollect({});
    await p.apps.listApps({});
    await p.nodes.listNodes({});
    await p.secrets.listSecrets({});
    await p.registry.listImages({});
    await p.agent('proc').client.getNodeStatus({});
    await expect(p.apps.getApp({ name: 'no-such-app' })).rejects.toMatchObject({ code: Code.NotFound });
    // No client certificate: refused before any handler, and still counted.
    const anonymous = createMtlsClient(AppService, {
      baseUrl: p.platform.url('scheduler'),
      server: expectedService('scheduler'),
      tls: { caPem: p.platform.admin.caPem },
    });
    const refused = await anonymous.listApps({}).catch((error: unknown) => ConnectError.from(error));
    expect(refused).toMatchObject({ code: Code.Unauthenticated });

    endpoints = {
      scheduler: p.platform.metricsUrl('scheduler'),
      secrets: p.platform.metricsUrl('secrets'),
      registry: p.platform.metricsUrl('registry'),
      'node-agent': p.platform.metricsUrl('proc'),
    };
    const texts: Record<string, string> = {};
    const parsed: Record<string, Family[]> = {};
    for (const [name, url] of Object.entries(endpoints)) {
      const response = await scrape(url, p.platform.admin);
      expect(response.status, name).toBe(200);
      expect(response.contentType, name).toMatch(/^text\/plain; version=0\.0\.4/);
      texts[name] = response.text;
      expect(await promtoolProblems(texts[name] ?? ''), name).toBe('');
      parsed[name] = await parseMetrics(texts[name] ?? '');
    }
    const handled = (name: string) => samplesOf(parsed[name] ?? [], 'grpc_server_handled_total');
    const latency = (name: string) => samplesOf(parsed[name] ?? [], 'grpc_server_handling_seconds_count');

    // The methods called, with their codes, in counters and histograms alike.
    const calls: [string, string, string, string][] = [
      ['scheduler', 'shellwego.scheduler.v1.AppService', 'DeployApp', 'OK'],
      ['scheduler', 'shellwego.scheduler.v1.AppService', 'ListApps', 'OK'],
      ['scheduler', 'shellwego.scheduler.v1.AppService', 'ListApps', 'Unauthenticated'],
      ['scheduler', 'shellwego.scheduler.v1.AppService', 'GetApp', 'NotFound'],
      ['scheduler', 'shellwego.scheduler.v1.NodeService', 'JoinNode', 'OK'],
      ['scheduler', 'shellwego.scheduler.v1.NodeService', 'ListNodes', 'OK'],
      ['secrets', 'shellwego.secrets.v1.SecretsService', 'SetSecret', 'OK'],
      ['secrets', 'shellwego.secrets.v1.SecretsService', 'ResolveSecrets', 'OK'],
      ['secrets', 'shellwego.secrets.v1.SecretsService', 'ListSecrets', 'OK'],
      ['registry', 'shellwego.registry.v1.RegistryService', 'ResolveImage', 'OK'],
      ['registry', 'shellwego.registry.v1.RegistryService', 'FetchRootfs', 'OK'],
      ['registry', 'shellwego.registry.v1.RegistryService', 'ListImages', 'OK'],
      ['node-agent', 'shellwego.agent.v1.NodeAgentService', 'GetNodeStatus', 'OK'],
    ];
    for (const [name, service, method, code] of calls) {
      const labels = { grpc_service: service, grpc_method: method, grpc_code: code };
      const counted = has(handled(name), labels);
      expect(counted, `${name} ${method} ${code} counted`).toHaveLength(1);
      expect(counted[0]?.value, `${name} ${method} ${code}`).toBeGreaterThanOrEqual(1);
      expect(has(latency(name), labels)[0]?.value, `${name} ${method} ${code} timed`).toBe(counted[0]?.value);
    }
    // Streams open now (the test's event follower, the agent's Session) are started and in flight, labelled with their kind.
    const inFlight = samplesOf(parsed.scheduler ?? [], 'grpc_server_in_flight_calls');
    expect(
      has(samplesOf(parsed.scheduler ?? [], 'grpc_server_started_total'), { grpc_method: 'WatchEvents', grpc_type: 'server_stream' })[0]?.value,
    ).toBeGreaterThan(0);
    expect(has(inFlight, { grpc_method: 'WatchEvents', grpc_type: 'server_stream' })[0]?.value).toBeGreaterThanOrEqual(1);
    expect(has(inFlight, { grpc_method: 'Session', grpc_type: 'bidi_stream' })[0]?.value).toBe(1);
    expect(has(inFlight, { grpc_method: 'ListApps' })[0]?.value).toBe(0);

    for (const [name, families] of Object.entries(parsed)) {
      // Process metrics of every process.
      expect(samplesOf(families, 'process_resident_memory_bytes')[0]?.value, name).toBeGreaterThan(1024 * 1024);
      expect(samplesOf(families, 'nodejs_eventloop_lag_p99_seconds').length, name).toBe(1);
      // Every label is bounded: no value longer than a method name, none that looks like a token.
      for (const family of families) {
        for (const sample of family.samples) for (const value of Object.values(sample.labels)) expect(value.length, `${name} ${sample.name}`).toBeLessThan(80);
      }
    }
    // Database timings of the three control services.
    for (const [name, schema] of [
      ['scheduler', 'scheduler'],
      ['secrets', 'secrets'],
      ['registry', 'registry'],
    ] as const) {
      const queries = has(samplesOf(parsed[name] ?? [], 'shellwego_db_query_duration_seconds_count'), { schema, outcome: 'ok' });
      expect(
        queries.reduce((sum, s) => sum + s.value, 0),
        `${name} queries`,
      ).toBeGreaterThan(0);
    }
    // The node agent's own figures (the instance was removed: none live now).
    expect(samplesOf(parsed['node-agent'] ?? [], 'shellwego_node_agent_start_seconds_count')[0]?.value).toBe(1);
    expect(has(samplesOf(parsed['node-agent'] ?? [], 'shellwego_node_agent_secret_pushes_total'), { kind: 'run', outcome: 'ok' })[0]?.value).toBe(1);

    // The scheduler's figures, from the active scheduler's cluster state.
    const scheduler = parsed.scheduler ?? [];
    expect(samplesOf(scheduler, 'shellwego_scheduler_leader')[0]?.value).toBe(1);
    expect(has(samplesOf(scheduler, 'shellwego_scheduler_nodes'), { state: 'READY' })[0]?.value).toBe(1);
    expect(samplesOf(scheduler, 'shellwego_scheduler_sessions')[0]?.value).toBe(1);
    expect(has(samplesOf(scheduler, 'shellwego_scheduler_pending_instances'), { reason: 'labels' })[0]?.value).toBe(1);
    expect(has(samplesOf(scheduler, 'shellwego_scheduler_instances'), { state: 'PENDING' })[0]?.value).toBe(1);
    expect(has(samplesOf(scheduler, 'shellwego_scheduler_placements_total'), { outcome: 'placed' })[0]?.value).toBe(1);
    expect(has(samplesOf(scheduler, 'shellwego_scheduler_placements_total'), { outcome: 'pending', constraint: 'labels' })[0]?.value).toBe(1);
    expect(has(samplesOf(scheduler, 'shellwego_scheduler_rollouts'), { state: 'IN_PROGRESS' })[0]?.value).toBe(1);
    // The secrets service's: resolves by outcome and reason, writes, rotation and budget.
    const secrets = parsed.secrets ?? [];
    expect(has(samplesOf(secrets, 'shellwego_secrets_resolves_total'), { outcome: 'granted', reason: 'none' })[0]?.value).toBe(1);
    expect(has(samplesOf(secrets, 'shellwego_secrets_resolves_total'), { outcome: 'denied', reason: 'not-a-node' })[0]?.value).toBe(1);
    expect(has(samplesOf(secrets, 'shellwego_secrets_writes_total'), { action: 'set', outcome: 'granted' })[0]?.value).toBe(1);
    expect(samplesOf(secrets, 'shellwego_secrets_encryption_budget_used_ratio')[0]?.value).toBeGreaterThan(0);
    expect(samplesOf(secrets, 'shellwego_secrets_rewrap_running')[0]?.value).toBe(0);
    expect(has(samplesOf(secrets, 'shellwego_secrets_rewrap_data_keys'), { state: 'done' })).toHaveLength(1);
    // The registry's: imports, rootfs builds and cache, bytes sent, GC runs.
    const registry = parsed.registry ?? [];
    expect(has(samplesOf(registry, 'shellwego_registry_imports_total'), { outcome: 'ok' })[0]?.value).toBe(1);
    expect(has(samplesOf(registry, 'shellwego_registry_rootfs_requests_total'), { result: 'built' })[0]?.value).toBe(1);
    expect(samplesOf(registry, 'shellwego_registry_rootfs_sent_bytes_total')[0]?.value).toBeGreaterThan(1024 * 1024);
    expect(has(samplesOf(registry, 'shellwego_registry_gc_runs_total'), { outcome: 'ok' })[0]?.value).toBe(1);

    // The canary secret and a join token appear in no metric (the sweep does find what it seeks).
    for (const [name, text] of Object.entries(texts)) {
      expect(leaks(text, flow.canary), `${name} leaks the canary`).toBe(false);
      expect(leaks(text, Buffer.from(token)), `${name} leaks a join token`).toBe(false);
    }
    expect(leaks(`x${flow.canary.toString('hex')}x`, flow.canary)).toBe(true);
  });

  it('feeds the Grafana dashboard: Prometheus with deploy/observability/prometheus.yml scrapes every service and answers each panel query', {
    timeout: 120_000,
  }, async () => {
    expect(endpoints, 'the first test ran').toBeDefined();
    const config = await readFile(join(observabilityDir, 'prometheus.yml'), 'utf8');
    expect((await execa('promtool', ['check', 'config', '--syntax-only', join(observabilityDir, 'prometheus.yml')], { reject: false })).exitCode).toBe(0);
    // The shipped configuration, pointed at this test's metrics ports and scraped every second.
    const defaults = { scheduler: '127.0.0.1:9401', secrets: '127.0.0.1:9402', registry: '127.0.0.1:9403', 'node-agent': '127.0.0.1:9404' } as const;
    // The scraper's certificate: the one npm start makes, from this platform's home.
    let adapted = config.replace('scrape_interval: 15s', 'scrape_interval: 1s').replaceAll('/var/lib/shellwego/pki/', `${join(platform?.home ?? '', 'pki')}/`);
    for (const [name, address] of Object.entries(defaults)) {
      expect(adapted).toContain(address);
      adapted = adapted.replace(address, new URL(endpoints?.[name as keyof typeof defaults] ?? '').host);
    }
    prometheus = await Prometheus.start(adapted);
    const up = await prometheus.waitFor('count(up{job=~"shellwego-.*"} == 1) == 4 and count(count_over_time(up{job="shellwego-scheduler"}[1m]) >= 3)', 30_000);
    expect(up.length).toBe(1);

    const dashboard = JSON.parse(await readFile(join(observabilityDir, 'grafana-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dashboard.panels.length).toBeGreaterThan(20);
    // Series that legitimately do not exist here: the pool of Postgres (these services run on
    // PGlite) and pulls (nothing was pulled from a remote registry).
    const absentHere = new Set([
      'sum by (schema, state) (shellwego_db_pool_connections)',
      'sum by (schema) (shellwego_db_pool_waiting_requests)',
      'sum by (outcome) (rate(shellwego_registry_pulls_total[5m]))',
    ]);
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        const result = await prometheus.query(expr);
        if (!absentHere.has(expr)) expect(result.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
      }
    }
  });
});
