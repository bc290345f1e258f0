// Where tests find the checkout's own files: the CLI entry and the scripts under deploy/.
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '../../..');
export const cliEntry = join(repoRoot, 'cli/bin/shellwego.js');
export const guestImageBuildScript = join(repoRoot, 'deploy/guest-image/build.sh');
