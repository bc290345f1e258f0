import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureDevPki } from '@shellwego/kit/pki';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

describe('service start-up with bad configuration', () => {
  it('exits 2 and names every bad setting, with where it came from', async () => {
    const home = await mkdtemp(join(tmpdir(), 'sw-badconfig-'));
    try {
      await ensureDevPki(home);
      const failure = await run(process.execPath, ['--import', 'tsx', 'services/registry/src/main.ts'], {
        cwd: root,
        env: {
          ...process.env,
          SHELLWEGO_HOME: home,
          SHELLWEGO_REGISTRY_LISTEN: 'no-port-here',
          SHELLWEGO_REGISTRY_MAX_MESSAGE_BYTES: '12',
        },
      }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      expect(failure?.code).toBe(2);
      expect(failure?.stderr).toMatch(/invalid configuration \(2 problems\)/);
      expect(failure?.stderr).toMatch(/SHELLWEGO_REGISTRY_LISTEN: .*no-port-here.*\(from env\)/);
      expect(failure?.stderr).toMatch(/SHELLWEGO_REGISTRY_MAX_MESSAGE_BYTES/);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 30_000);

  it('exits 2 when given a CA certificate and key as its own identity (the root, or the node intermediate)', async () => {
    const home = await mkdtemp(join(tmpdir(), 'sw-ca-identity-'));
    try {
      const pki = await ensureDevPki(home);
      for (const ca of [{ cert: pki.caCert, key: pki.caKey }, pki.nodeCa]) {
        const failure = await run(process.execPath, ['--import', 'tsx', 'services/secrets/src/main.ts'], {
          cwd: root,
          env: { ...process.env, SHELLWEGO_HOME: home, SHELLWEGO_SECRETS_TLS_CERT: ca.cert, SHELLWEGO_SECRETS_TLS_KEY: ca.key },
        }).then(
          () => undefined,
          (error: { code: number; stderr: string }) => error,
        );
        expect(failure?.code, ca.cert).toBe(2);
        expect(failure?.stderr).toMatch(
          /SHELLWEGO_SECRETS_TLS_CERT: is a CA certificate \(CN=shellwego development (node )?CA\); a process holds only its own leaf/,
        );
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 60_000);

  it('exits 2 naming the TLS setting when the certificate files are missing', async () => {
    const home = await mkdtemp(join(tmpdir(), 'sw-nopki-'));
    try {
      const failure = await run(process.execPath, ['--import', 'tsx', 'services/node-agent/src/main.ts'], {
        cwd: root,
        env: { ...process.env, SHELLWEGO_HOME: home },
      }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      expect(failure?.code).toBe(2);
      expect(failure?.stderr).toMatch(/SHELLWEGO_NODE_AGENT_TLS_CA: cannot read .*ca\.crt \(ENOENT\); run `npm start` once/);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 30_000);
});
