import { ConfigError, loadConfig } from '@shellwego/kit/config';
import { describe, expect, it } from 'vitest';
import { secretsConfig } from './config.js';
import { defaultMasterKeyPath, MASTER_KEY_FILE_ENV } from './kek/index.js';

describe('secrets configuration', () => {
  it('defaults the master key, grant key and database under $SHELLWEGO_HOME', () => {
    const config = loadConfig(secretsConfig, { env: { SHELLWEGO_HOME: '/srv/sw' } });
    expect(config.masterKeyFile).toBe(defaultMasterKeyPath('/srv/sw'));
    expect(config.grantPublicKeys).toEqual(['/srv/sw/pki/grant-signing.pub']);
    expect(config.database).toBe('/srv/sw/secrets/db');
    expect(config.keepVersions).toBe(10);
    expect(secretsConfig.envNames.masterKeyFile).toBe(MASTER_KEY_FILE_ENV);
  });

  it('takes several grant keys for a rollover and refuses bad values naming the variable', () => {
    const env = { SHELLWEGO_HOME: '/srv/sw', SHELLWEGO_SECRETS_GRANT_PUBLIC_KEYS: '$SHELLWEGO_HOME/pki/old.pub, /etc/sw/new.pub' };
    expect(loadConfig(secretsConfig, { env }).grantPublicKeys).toEqual(['/srv/sw/pki/old.pub', '/etc/sw/new.pub']);
    const bad = { SHELLWEGO_SECRETS_GRANT_PUBLIC_KEYS: '/ok.pub,,$HOME/x', SHELLWEGO_SECRETS_KEEP_VERSIONS: '0' };
    expect(() => loadConfig(secretsConfig, { env: bad })).toThrow(ConfigError);
    try {
      loadConfig(secretsConfig, { env: bad });
    } catch (err) {
      expect(String(err)).toMatch(/SHELLWEGO_SECRETS_GRANT_PUBLIC_KEYS: expected one or more paths separated by ","/);
      expect(String(err)).toMatch(/SHELLWEGO_SECRETS_KEEP_VERSIONS: expected an integer between 1 and 1000/);
    }
  });
});
