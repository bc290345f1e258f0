// Which certificate NodeAgentService is served with: TLS_CERT / TLS_KEY when those files exist
// (a certificate with this host's names, like the development PKI's), else the node's own
// certificate from joining, which names the host by its hostname. In that case the node joins
// before it serves. Without either (no TLS files, no identity, no token or no CA), the server
// start reports the missing TLS files as the configuration error it is.
import { access, constants } from 'node:fs/promises';
import { hostname } from 'node:os';
import { loadConfig } from '@shellwego/kit/config';
import type { Logger } from '@shellwego/kit/log';
import { nodeAgentConfig } from './config.js';
import { ensureIdentity } from './identity/ensure-identity.js';
import { hasIdentity, identityPaths } from './identity/identity-store.js';

export async function servingEnvironment(env: NodeJS.ProcessEnv, log: Logger): Promise<NodeJS.ProcessEnv> {
  const config = loadConfig(nodeAgentConfig, { env });
  const readable = async (path: string) =>
    access(path, constants.R_OK).then(
      () => true,
      () => false,
    );
  if ((await readable(config.tlsCert)) && (await readable(config.tlsKey))) return env;
  const canJoin = config.joinToken !== undefined || config.joinTokenFile !== undefined;
  if ((!hasIdentity(config.stateDir) && !canJoin) || !(await readable(config.tlsCa))) return env;
  const identity = await ensureIdentity({ ...config, hostname: config.hostname ?? hostname() }, log, new AbortController().signal);
  const paths = identityPaths(config.stateDir);
  log.info({ node: identity.nodeId, cert: paths.cert }, 'no serving certificate configured: serving with the node certificate');
  return { ...env, [nodeAgentConfig.envNames.tlsCert]: paths.cert, [nodeAgentConfig.envNames.tlsKey]: paths.key };
}
