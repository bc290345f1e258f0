// Start-up refuses, with the documented error, to run when the master key
// that existing secrets need is missing, or when the key file is readable by
// others; it never creates a new key over existing secrets.
import { access, chmod, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { SecretScopeKind } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { TestPlatform } from '@shellwego/testing/platform';
import type { SecretsClients } from '@shellwego/testing/secrets-clients';
import { secretsClients } from '@shellwego/testing/secrets-clients';
import { startService } from '@shellwego/testing/service-process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let platform: TestPlatform;
let clients: SecretsClients;
let keyFile: string;

beforeAll(async () => {
  platform = await TestPlatform.start({ services: ['secrets'] });
  clients = await secretsClients(platform);
  keyFile = join(platform.home, 'secrets', 'master.key');
  await clients.admin.setSecret({ scope: { kind: SecretScopeKind.APP, app: 'shop' }, name: 'KEPT', value: Buffer.from('still here') });
  expect(await platform.stopService('secrets')).toBe(0);
});

afterAll(() => platform?.stop());

/** Starts the secrets process on the platform's home and waits for it to exit on its own. */
async function failedStart(): Promise<{ code: number | string; output: string }> {
  const lines: string[] = [];
  const child = await startService(
    'secrets',
    { ...process.env, SHELLWEGO_HOME: platform.home, SHELLWEGO_SECRETS_LISTEN: `127.0.0.1:${platform.service('secrets').port}` },
    (line) => lines.push(line),
  );
  return { code: await child.exited, output: lines.join('\n') };
}

describe('secrets start-up and the master key file', () => {
  it('refuses to start when the key file is missing but secrets exist, and creates no new key', async () => {
    await rename(keyFile, `${keyFile}.moved`);
    const { code, output } = await failedStart();
    expect(code).toBe(1);
    expect(output).toMatch(
      /secrets: failed to start: the database holds secrets encrypted under master key k1-[0-9a-f]{8}, but \S+master\.key is missing\. Restore the key file from backup \(it is not recoverable\), or point SHELLWEGO_SECRETS_MASTER_KEY_FILE at it\. Refusing to start so that no secret is orphaned\./,
    );
    await expect(access(keyFile)).rejects.toThrow(/ENOENT/);
    await rename(`${keyFile}.moved`, keyFile);
  });

  it('refuses to start when the key file is readable by others', async () => {
    await chmod(keyFile, 0o644);
    const { code, output } = await failedStart();
    expect(code).toBe(1);
    expect(output).toContain(`secrets: failed to start: master key file ${keyFile} has mode 0644; run: chmod 600 ${keyFile}`);
    await chmod(keyFile, 0o600);
  });

  it('starts again once the key is back, with every secret readable', async () => {
    await platform.restartService('secrets');
    const res = await clients.node.resolveSecrets({ grant: clients.grant({ app: 'shop', secretNames: ['KEPT'] }) });
    expect(Buffer.from(res.secrets[0]?.value ?? []).toString()).toBe('still here');
  });
});
