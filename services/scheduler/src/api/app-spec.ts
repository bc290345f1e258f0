import type { Duration } from '@bufbuild/protobuf/wkt';
import type { AppSpec } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { PlacementStrategy } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { durationMs } from '../model/durations.js';
import { labelProblems } from '../model/labels.js';

/** Columns are int4: keep every count and size representable. */
export const MAX_INT32 = 2_147_483_647;
export const MAX_REPLICAS = 10_000;
const MAX_HEALTH_DEADLINE_MS = 24 * 3_600_000;

const APP_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// [registry[:port]/]path[:tag][@algorithm:digest]
const IMAGE_REFERENCE =
  /^(?:[A-Za-z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]{32,})?$/;

/** A rolling update's limits with the contract's defaults applied. */
export interface RolloutLimits {
  readonly maxSurge: number;
  readonly maxUnavailable: number;
  readonly minHealthyMs: number;
  readonly healthDeadlineMs: number;
  readonly autoRollback: boolean;
}

export function appNameProblems(name: string, field = 'name'): string[] {
  return APP_NAME.test(name)
    ? []
    : [`${field}: ${JSON.stringify(name)} is not an app name (a lowercase DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-')`];
}

/** Every problem with a spec, each naming its field ("spec.resources.memory_mib: must be > 0"). */
export function appSpecProblems(spec: AppSpec | undefined): string[] {
  if (spec === undefined) return ['spec: required'];
  const problems: string[] = [];
  if (spec.image === '') problems.push('spec.image: required (an image reference like shop:1.2 or shop@sha256:...)');
  else if (!IMAGE_REFERENCE.test(spec.image)) {
    problems.push(`spec.image: ${JSON.stringify(spec.image)} is not an image reference (name[:tag] or name@sha256:<hex>)`);
  }
  if (spec.resources === undefined) problems.push('spec.resources: required (cpu_millis and memory_mib)');
  else {
    problems.push(...positive(spec.resources.cpuMillis, 'spec.resources.cpu_millis'));
    problems.push(...positive(spec.resources.memoryMib, 'spec.resources.memory_mib'));
  }
  if (spec.replicas > MAX_REPLICAS) problems.push(`spec.replicas: must be at most ${MAX_REPLICAS}, got ${spec.replicas}`);
  if (spec.replicas === 0 && spec.updateStrategy !== undefined) {
    problems.push('spec.replicas: must be > 0 when spec.update_strategy is given (a rollout needs instances to roll)');
  }
  for (const [key, value] of Object.entries(spec.env)) {
    if (!ENV_NAME.test(key)) {
      problems.push(`spec.env[${JSON.stringify(key)}]: not an environment variable name (letters, digits and _, not starting with a digit)`);
    }
    if (value.includes('\0')) problems.push(`spec.env[${JSON.stringify(key)}]: the value contains a NUL character`);
  }
  const seen = new Set<string>();
  spec.secretNames.forEach((name, index) => {
    if (!ENV_NAME.test(name)) {
      problems.push(`spec.secret_names[${index}]: ${JSON.stringify(name)} is not a secret name (letters, digits and _, not starting with a digit)`);
    } else if (seen.has(name)) problems.push(`spec.secret_names[${index}]: ${name} is listed twice`);
    seen.add(name);
  });
  if (spec.command.length > 0 && spec.command[0] === '') problems.push('spec.command[0]: the executable must not be empty');
  spec.command.forEach((arg, index) => {
    if (arg.includes('\0')) problems.push(`spec.command[${index}]: contains a NUL character`);
  });
  problems.push(...healthCheckProblems(spec));
  problems.push(...strategyProblems(spec));
  if (spec.placement !== undefined) {
    problems.push(...labelProblems(spec.placement.requiredLabels, 'spec.placement.required_labels'));
    if (PlacementStrategy[spec.placement.strategy] === undefined) {
      problems.push(`spec.placement.strategy: ${spec.placement.strategy} is not a placement strategy (BINPACK or SPREAD)`);
    }
  }
  spec.ports.forEach((port, index) => {
    if (port < 1 || port > 65_535) problems.push(`spec.ports[${index}]: ${port} is not a port (1-65535)`);
  });
  return problems;
}

function positive(value: number, field: string): string[] {
  if (value <= 0) return [`${field}: must be > 0`];
  if (value > MAX_INT32) return [`${field}: must be at most ${MAX_INT32}, got ${value} (a negative number sent as uint32?)`];
  return [];
}

function healthCheckProblems(spec: AppSpec): string[] {
  const check = spec.healthCheck;
  if (check === undefined) return [];
  const problems: string[] = [];
  const probe = check.probe;
  const port = (value: number, field: string) => {
    if (value < 1 || value > 65_535) problems.push(`${field}: ${value} is not a port (1-65535)`);
  };
  if (probe.case === 'tcp') port(probe.value.port, 'spec.health_check.tcp.port');
  if (probe.case === 'http') {
    port(probe.value.port, 'spec.health_check.http.port');
    if (!probe.value.path.startsWith('/')) problems.push('spec.health_check.http.path: must start with "/"');
  }
  if (probe.case === 'exec' && (probe.value.argv.length === 0 || probe.value.argv[0] === '')) {
    problems.push('spec.health_check.exec.argv: must name a command');
  }
  problems.push(...durationProblems(check.interval, 'spec.health_check.interval', false));
  problems.push(...durationProblems(check.timeout, 'spec.health_check.timeout', false));
  return problems;
}

function strategyProblems(spec: AppSpec): string[] {
  const strategy = spec.updateStrategy;
  if (strategy === undefined) return [];
  const problems = [
    ...durationProblems(strategy.minHealthyTime, 'spec.update_strategy.min_healthy_time', true),
    ...durationProblems(strategy.healthDeadline, 'spec.update_strategy.health_deadline', false),
  ];
  if (strategy.maxSurge > MAX_REPLICAS) problems.push(`spec.update_strategy.max_surge: must be at most ${MAX_REPLICAS}`);
  if (strategy.maxUnavailable > MAX_REPLICAS) problems.push(`spec.update_strategy.max_unavailable: must be at most ${MAX_REPLICAS}`);
  if (problems.length === 0) {
    const limits = rolloutLimits(spec);
    if (limits.healthDeadlineMs > MAX_HEALTH_DEADLINE_MS) problems.push('spec.update_strategy.health_deadline: must be at most 24h');
    if (limits.healthDeadlineMs <= limits.minHealthyMs) {
      problems.push('spec.update_strategy.health_deadline: must be longer than min_healthy_time');
    }
  }
  return problems;
}

function durationProblems(value: Duration | undefined, field: string, zeroAllowed: boolean): string[] {
  if (value === undefined) return [];
  if (value.seconds < 0n || value.nanos < 0) return [`${field}: must not be negative`];
  const ms = durationMs(value);
  if (!zeroAllowed && ms === 0) return [`${field}: must be > 0`];
  return [];
}

/** The update strategy with the contract's defaults (surge 1, unavailable 0, 5 s, 5 min, rollback on). */
export function rolloutLimits(spec: AppSpec): RolloutLimits {
  const strategy = spec.updateStrategy;
  return {
    // 0 is proto3's "unset": a surge of 0 would also deadlock a rollout with max_unavailable 0.
    maxSurge: strategy?.maxSurge || 1,
    maxUnavailable: strategy?.maxUnavailable ?? 0,
    minHealthyMs: strategy?.minHealthyTime ? durationMs(strategy.minHealthyTime) : 5_000,
    healthDeadlineMs: strategy?.healthDeadline ? durationMs(strategy.healthDeadline) : 300_000,
    autoRollback: strategy?.autoRollback ?? true,
  };
}
