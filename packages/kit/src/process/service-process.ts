import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
}

const require = createRequire(import.meta.url);

/** The entry file a service package exports as `./main` (`@shellwego/<name>/main`). */
export function serviceEntry(name: string): string {
  return require.resolve(`@shellwego/${name}/main`);
}

/**
 * Starts a service process from its entry file (TypeScript under tsx, JavaScript as is),
 * handing each line it prints to `onLine`.
 */
export function startServiceProcess(name: string, env: NodeJS.ProcessEnv, onLine: (line: string) => void, entry = serviceEntry(name)): ServiceProcess {
  const args = entry.endsWith('.ts') ? ['--import', 'tsx', entry] : [entry];
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', onLine);
  }
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return { name, child, exited };
}
