// Service processes as they ship: each from its bundle (built first when a source changed), with
// the Node options and environment it runs with in production.
import { commandOf, type DeployableName, deployables } from '@shellwego/build';
import { ensureBuilt } from '@shellwego/build/build';
import { type ServiceProcess, startServiceProcess } from '@shellwego/kit/process';

const built = new Map<DeployableName, Promise<unknown>>();

export async function startService(
  name: Exclude<DeployableName, 'guest-agent' | 'launcher'>,
  env: NodeJS.ProcessEnv,
  onLine: (line: string) => void,
): Promise<ServiceProcess> {
  let building = built.get(name);
  if (building === undefined) {
    building = ensureBuilt(name);
    built.set(name, building);
  }
  await building;
  // Metrics on a port of their own choosing unless the test asks for one: tests run side by side,
  // and each service logs the URL it serves them on ("metrics served").
  const metricsListen = { [`SHELLWEGO_${name.replace('-', '_').toUpperCase()}_METRICS_LISTEN`]: '127.0.0.1:0' };
  return startServiceProcess(name, commandOf(name), { ...metricsListen, ...deployables[name].env, ...env }, onLine);
}
