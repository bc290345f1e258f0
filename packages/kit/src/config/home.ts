// Where shellwego keeps its state on this host, and the services' well-known ports.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const SHELLWEGO_HOME_ENV = 'SHELLWEGO_HOME';

export const defaultPorts = { scheduler: 7401, secrets: 7402, registry: 7403, nodeAgent: 7404 } as const;

/** The user's home directory, from env HOME when set so tests and services can inject it. */
export function userHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.HOME;
  return home !== undefined && home !== '' ? home : homedir();
}

/** Root's state is a system service's: in /var/lib, where the services' own users can reach it. */
export const SYSTEM_HOME = '/var/lib/shellwego';

/**
 * `$SHELLWEGO_HOME` (a leading ~ expanded, made absolute); by default `~/.shellwego`, and for root
 * `/var/lib/shellwego` (root's home is closed to the unprivileged users some parts run as, such
 * as the embedded Postgres server).
 */
export function shellwegoHome(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): string {
  const fromEnv = env[SHELLWEGO_HOME_ENV];
  if (fromEnv === undefined || fromEnv === '') {
    return uid === 0 ? SYSTEM_HOME : join(userHome(env), '.shellwego');
  }
  if (fromEnv === '~' || fromEnv.startsWith('~/')) {
    return join(userHome(env), fromEnv.slice(1));
  }
  return resolve(fromEnv);
}
