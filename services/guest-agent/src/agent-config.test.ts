import { describe, expect, it } from 'vitest';
import { cmdlineValue, loadAgentConfig, parseChannelSpec } from './agent-config.js';

const base = { argv: [], env: {}, cmdline: '', fileExists: () => false };

describe('parseChannelSpec', () => {
  it('accepts the forms the guest image init and the process driver use', () => {
    expect(parseChannelSpec('unix:/run/a.sock')).toEqual({ kind: 'unix', path: '/run/a.sock' });
    expect(parseChannelSpec('unix-listen:/run/guest-agent.sock')).toEqual({ kind: 'unix', path: '/run/guest-agent.sock' });
    expect(parseChannelSpec('char-device:/dev/vport0p1')).toEqual({ kind: 'char-device', path: '/dev/vport0p1' });
    expect(parseChannelSpec('virtio-serial:/dev/virtio-ports/shellwego.0')).toEqual({
      kind: 'char-device',
      path: '/dev/virtio-ports/shellwego.0',
    });
    expect(parseChannelSpec('virtio-serial:shellwego.0')).toEqual({ kind: 'char-device', path: '/dev/virtio-ports/shellwego.0' });
    expect(() => parseChannelSpec('vsock:1024')).toThrow(/socat/);
    expect(() => parseChannelSpec('tcp:1234')).toThrow(/not one of/);
    expect(() => parseChannelSpec('unix:')).toThrow(/not one of/);
  });
});

describe('loadAgentConfig', () => {
  it('takes the flag first, then the environment, then the kernel command line', () => {
    const cmdline = 'console=ttyS0 shellwego.channel=virtio-serial:shellwego.0 shellwego.rootfs=/dev/vdb quiet';
    expect(cmdlineValue(cmdline, 'shellwego.rootfs')).toBe('/dev/vdb');
    const fromCmdline = loadAgentConfig({ ...base, cmdline });
    expect(fromCmdline.channel).toEqual({ kind: 'char-device', path: '/dev/virtio-ports/shellwego.0' });
    expect(fromCmdline.defaultRootfsDevice).toBe('/dev/vdb');
    const fromEnv = loadAgentConfig({ ...base, cmdline, env: { SHELLWEGO_CHANNEL: 'unix:/e.sock' } });
    expect(fromEnv.channel).toEqual({ kind: 'unix', path: '/e.sock' });
    const fromFlag = loadAgentConfig({
      ...base,
      cmdline,
      argv: ['--channel', 'unix:/f.sock', '--grace-period-ms', '500'],
      env: { SHELLWEGO_CHANNEL: 'unix:/e.sock' },
    });
    expect(fromFlag.channel).toEqual({ kind: 'unix', path: '/f.sock' });
    expect(fromFlag.gracePeriodMs).toBe(500);
  });

  it('defaults to VM mode with /dev/vda inside a guest image and to process mode elsewhere', () => {
    const argv = ['--channel', 'unix:/a.sock'];
    expect(loadAgentConfig({ ...base, argv }).defaultRootfsDevice).toBeUndefined();
    expect(loadAgentConfig({ ...base, argv, fileExists: (p) => p === '/etc/shellwego-image.json' }).defaultRootfsDevice).toBe('/dev/vda');
  });

  it('fails without a channel', () => {
    expect(() => loadAgentConfig(base)).toThrow(/no channel/);
  });
});
