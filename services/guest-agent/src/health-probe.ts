// The workload's health check, run on demand by GuestService.Health.
import { request } from 'node:http';
import { connect } from 'node:net';
import type { HealthCheck } from '@shellwego/contracts/common/v1/workload_pb';
import { errnoCode } from '@shellwego/kit/errors';

export interface ProbeResult {
  readonly healthy: boolean;
  readonly detail: string;
}

export interface ExecOutcome {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly error?: string;
}

/** Runs argv inside the workload's root with its user and non-secret env, killing it at the timeout. */
export type ProbeExec = (argv: readonly string[], timeoutMs: number) => Promise<ExecOutcome>;

export const DEFAULT_PROBE_TIMEOUT_MS = 1000;

/** What a person reads for the spawn errors a probe command meets most. */
const SPAWN_ERRORS: Readonly<Record<string, string>> = { ENOENT: 'not found', EACCES: 'permission denied', ENOEXEC: 'not an executable format' };

export function probeTimeoutMs(check: HealthCheck | undefined): number {
  const timeout = check?.timeout;
  if (timeout === undefined) {
    return DEFAULT_PROBE_TIMEOUT_MS;
  }
  const ms = Number(timeout.seconds) * 1000 + Math.floor(timeout.nanos / 1e6);
  return ms > 0 ? ms : DEFAULT_PROBE_TIMEOUT_MS;
}

export async function runProbe(check: HealthCheck | undefined, exec: ProbeExec): Promise<ProbeResult> {
  const timeoutMs = probeTimeoutMs(check);
  const probe = check?.probe;
  switch (probe?.case) {
    case undefined:
      return { healthy: true, detail: 'running (no health check)' };
    case 'tcp':
      return tcpProbe(probe.value.port, timeoutMs);
    case 'http':
      return httpProbe(probe.value.port, probe.value.path || '/', timeoutMs);
    case 'exec': {
      const command = probe.value.argv[0] ?? '';
      const outcome = await exec(probe.value.argv, timeoutMs);
      if (outcome.error !== undefined) {
        const named = command === '' ? '' : `${command}: `;
        return { healthy: false, detail: `exec probe could not start: ${named}${SPAWN_ERRORS[outcome.error] ?? outcome.error}` };
      }
      if (outcome.timedOut) {
        return { healthy: false, detail: `exec probe did not finish within ${timeoutMs} ms` };
      }
      if (outcome.exitCode === 0) {
        return { healthy: true, detail: 'exec probe exited 0' };
      }
      if (outcome.exitCode === null) return { healthy: false, detail: `exec probe killed by ${outcome.signal ?? 'a signal'}` };
      // Inside a VM the probe starts through busybox, which exits 127/126 when it cannot run the command.
      const why = outcome.exitCode === 127 ? `: ${command}: not found` : outcome.exitCode === 126 ? `: ${command}: not executable` : '';
      return { healthy: false, detail: `exec probe exited ${outcome.exitCode}${why}` };
    }
  }
}

function tcpProbe(port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => finish(false, `tcp probe: no connection to 127.0.0.1:${port} within ${timeoutMs} ms`), timeoutMs);
    const finish = (healthy: boolean, detail: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ healthy, detail });
    };
    socket.once('connect', () => finish(true, `tcp probe: 127.0.0.1:${port} accepts connections`));
    socket.once('error', (err) => finish(false, `tcp probe: 127.0.0.1:${port}: ${errnoCode(err) ?? err.message}`));
  });
}

function httpProbe(port: number, path: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const url = `http://127.0.0.1:${port}${path}`;
    let settled = false;
    const finish = (healthy: boolean, detail: string): void => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve({ healthy, detail });
      }
    };
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      finish(status >= 200 && status < 400, `http probe: GET ${url} answered ${status}`);
    });
    const timer = setTimeout(() => finish(false, `http probe: GET ${url} did not answer within ${timeoutMs} ms`), timeoutMs);
    req.once('error', (err) => finish(false, `http probe: GET ${url}: ${errnoCode(err) ?? err.message}`));
    req.end();
  });
}
