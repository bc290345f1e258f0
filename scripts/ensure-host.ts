// Installs the Debian packages the platform and its tests need, when missing
// (deploy/setup-host.sh reads deploy/packages/*.txt).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../deploy/setup-host.sh', import.meta.url));
const result = spawnSync('bash', [script], { stdio: 'inherit' });
process.exit(result.status ?? 1);
