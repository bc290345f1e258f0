// The environment a VMM starts with: a fixed PATH and nothing else. The node agent's own
// environment holds its settings (a join token, exporter headers, whatever the operator set) and
// none of it is the VMM's business; a VMM that a guest compromises must find nothing there.
export const VMM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function vmmEnvironment(): Record<string, string> {
  return { PATH: VMM_PATH };
}
