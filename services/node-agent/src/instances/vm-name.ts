// The name a VM gets on this host: the instance id when the drivers accept it and its sockets fit
// in a Unix socket path, else a short stable name derived from it (instance ids can reach ~80
// characters: a 63-character app name, the version and a suffix).
import { createHash } from 'node:crypto';
import { join } from 'node:path';

const DRIVER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
// sun_path holds 107 bytes plus the NUL; the longest socket name the drivers use is 10 bytes.
const MAX_SOCKET_PATH_BYTES = 107;
const LONGEST_SOCKET_NAME = 'guest.sock';

export function vmNameFor(instanceId: string, vmDir: string): string {
  const fits = (name: string) => Buffer.byteLength(join(vmDir, name, LONGEST_SOCKET_NAME)) <= MAX_SOCKET_PATH_BYTES;
  if (DRIVER_NAME.test(instanceId) && fits(instanceId)) return instanceId;
  const short = `vm-${createHash('sha256').update(instanceId).digest('hex').slice(0, 16)}`;
  if (!fits(short)) {
    throw new Error(
      `the VM directory ${vmDir} is too long for the VMs' Unix sockets (at most ${MAX_SOCKET_PATH_BYTES} bytes per path): set SHELLWEGO_NODE_AGENT_STATE_DIR to a shorter directory`,
    );
  }
  return short;
}
