// The app image of the guest isolation test: Debian's static busybox, a passwd naming the user
// `app` (uid 4242, group 4243) and `USER app` in its config. Its entrypoint reports what the
// workload sees (its ids, its own pid, every process /proc lists, the sha256 of its $CANARY
// secret), then serves a TCP port; on SIGTERM it says so and exits 42. Its exec probe passes only
// as that user and inside the workload's PID namespace.
import { busyboxLayer } from '@shellwego/testing/images/busybox';
import { ociArchive } from '@shellwego/testing/images/image-archive';
import { type LayerEntry, layerTar } from '@shellwego/testing/images/layer-tar';

export const APP_UID = 4242;
export const APP_GID = 4243;
/** What the workload exits with when SIGTERM stops it. */
export const TERM_EXIT_CODE = 42;

const BB = '/bin/busybox';

const ENTRYPOINT = [
  `echo "isolation-ids=$(${BB} id -u):$(${BB} id -g)"`,
  'echo "isolation-self=$$"',
  `echo "$$" > /tmp/workload.pid`,
  // Every process this workload can see, as pid:comm (the command itself shows up too).
  `echo "isolation-procs=$(for d in /proc/[0-9]*; do printf '%s:%s,' "\${d#/proc/}" "$(${BB} cat "$d/comm")"; done)"`,
  `echo "isolation-ps=$(${BB} ps -o pid,user,comm | ${BB} tr '\\n' ';')"`,
  `echo "isolation-canary=$(printf %s "$CANARY" | ${BB} sha256sum | ${BB} cut -d' ' -f1)"`,
  `trap 'echo isolation-term; kill "$n"; exit ${TERM_EXIT_CODE}' TERM`,
  `${BB} nc -ll -p "$PORT" -e ${BB} true & n=$!`,
  'echo "listening on $PORT" >&2',
  'wait',
].join('\n');

// As the app user, in the workload's PID namespace: its pid there answers kill -0 only from inside.
const PROBE = `#!${BB} sh\n[ "$(${BB} id -u)" = ${APP_UID} ] && kill -0 "$(${BB} cat /tmp/workload.pid)"\n`;
export const PROBE_PATH = '/usr/local/bin/ready-probe';

export async function isolationImageArchive(tag: string): Promise<Buffer> {
  const entries: LayerEntry[] = [
    ...busyboxLayer().filter((entry) => entry.path !== 'etc/passwd' && entry.path !== 'etc/group'),
    { type: 'file', path: 'etc/passwd', content: `root:x:0:0:root:/root:/bin/sh\napp:x:${APP_UID}:${APP_GID}::/home/app:/bin/sh\n` },
    { type: 'file', path: 'etc/group', content: `root:x:0:\napp:x:${APP_GID}:\n` },
    { type: 'dir', path: 'usr/local/' },
    { type: 'dir', path: 'usr/local/bin/' },
    { type: 'file', path: PROBE_PATH.slice(1), content: PROBE, mode: 0o755 },
  ];
  const { archive } = await ociArchive(
    {
      layers: [await layerTar(entries)],
      runtime: { Entrypoint: [BB, 'sh', '-c', ENTRYPOINT], Env: ['PATH=/bin', 'PORT=8080'], WorkingDir: '/', User: 'app' },
    },
    { tag },
  );
  return archive;
}
