import { defaultPorts, defineConfig, expandPath, integer, path } from '../../../lib/config/index.js';
import type { Setting } from '../../../lib/config/index.js';
import { databaseSettings, serverSettings } from '../../../lib/service/index.js';

/**
 * One or more paths separated by commas, each expanded like path(). Several
 * grant public keys let the scheduler's signing key roll over: list old and
 * new, switch the scheduler, then drop the old one.
 */
function pathList(options: { default: string; description: string }): Setting<readonly string[]> {
  const expected = 'one or more paths separated by "," (a leading ~ or $SHELLWEGO_HOME is expanded)';
  return Object.freeze({
    kind: 'pathList',
    description: options.description,
    sensitive: false,
    defaultInput: options.default,
    optional: false,
    parse(input: unknown, context: { env: NodeJS.ProcessEnv }) {
      const pieces = typeof input === 'string' ? input.split(',').map((piece) => piece.trim()) : Array.isArray(input) ? input : [];
      const paths = pieces.map((piece) => (typeof piece === 'string' ? expandPath(piece, context.env) : undefined));
      if (paths.length === 0 || paths.some((p) => p === undefined)) return { ok: false as const, expected };
      return { ok: true as const, value: Object.freeze(paths as string[]) };
    },
  });
}

/** Settings of the secrets process; env vars start with SHELLWEGO_SECRETS_. */
export const secretsConfig = defineConfig('SHELLWEGO_SECRETS', {
  ...serverSettings('secrets', defaultPorts.secrets),
  ...databaseSettings('secrets'),
  masterKeyFile: path({
    default: '$SHELLWEGO_HOME/secrets/master.key',
    description: 'the 32-byte master key file (mode 0600, directory 0700); rotated versions sit beside it as master-k<N>.key',
  }),
  grantPublicKeys: pathList({
    default: '$SHELLWEGO_HOME/pki/grant-signing.pub',
    description: "PEM file(s) of the scheduler's Ed25519 grant public key",
  }),
  keepVersions: integer({ default: 10, min: 1, max: 1000, description: 'versions kept per secret; older ones are deleted on write' }),
  rewrapBatchSize: integer({ default: 200, min: 1, max: 10_000, description: 'secret versions re-wrapped per transaction during a master key rotation' }),
});
