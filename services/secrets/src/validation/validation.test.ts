import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { SecretScopeKind, SecretScopeSchema } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { describe, expect, it } from 'vitest';
import { validateAppName } from './app-name.js';
import { validateSecretName, validateSecretNames } from './secret-name.js';
import { describeSecretScope, secretScopeToProto, validateOptionalSecretScope, validateSecretScope } from './secret-scope.js';
import { MAX_SECRET_VALUE_BYTES, validateSecretValue } from './secret-value.js';

function connectFailure(fn: () => unknown): ConnectError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConnectError) return err;
    throw err;
  }
  throw new Error('expected a ConnectError');
}

function invalid(fn: () => unknown): string {
  const err = connectFailure(fn);
  expect(err.code).toBe(Code.InvalidArgument);
  return err.rawMessage;
}

describe('secret names', () => {
  it('accepts env-var style names up to 128 characters', () => {
    for (const name of ['DB_PASSWORD', '_X', 'a', 'http_proxy', 'K8S_TOKEN_2', 'A'.repeat(128)]) {
      expect(validateSecretName(name)).toBe(name);
    }
  });

  it('refuses other names, naming the field and the rule', () => {
    expect(invalid(() => validateSecretName('1ABC'))).toBe('name: "1ABC" is not a valid secret name; use letters, digits and _ and do not start with a digit');
    for (const name of ['DB-PASSWORD', 'A B', 'A=B', 'Ä', 'A\n', 'A.B']) {
      expect(invalid(() => validateSecretName(name))).toMatch(/^name: .* is not a valid secret name/);
    }
    expect(invalid(() => validateSecretName(''))).toBe('name: a secret name is required');
    expect(invalid(() => validateSecretName('A'.repeat(129)))).toMatch(/^name: "A{64}\.\.\." is 129 characters; a secret name is at most 128$/);
  });

  it('reserves the SHELLWEGO_ prefix in any case', () => {
    for (const name of ['SHELLWEGO_TOKEN', 'shellwego_x', 'ShellWeGo_']) {
      expect(invalid(() => validateSecretName(name))).toMatch(/reserved for variables the platform sets/);
    }
    expect(validateSecretName('SHELLWEGOX')).toBe('SHELLWEGOX');
  });

  it('escapes control characters instead of echoing them', () => {
    expect(invalid(() => validateSecretName('A\u001b[31m'))).toContain('"A\\u001b[31m"');
  });

  it('reports every bad name of a list at once', () => {
    expect(validateSecretNames(['A', 'B'], 'grant.secret_names')).toEqual(['A', 'B']);
    const message = invalid(() => validateSecretNames(['OK', '9X', 'Y-Z'], 'grant.secret_names'));
    expect(message).toMatch(/^grant\.secret_names: "9X" .*; "Y-Z" /);
  });
});

describe('app names', () => {
  it('accepts lowercase DNS labels of 1 to 63 characters', () => {
    for (const app of ['shop', 'a', '0', 'my-app-2', 'a'.repeat(63)]) expect(validateAppName(app)).toBe(app);
  });

  it('refuses everything else', () => {
    for (const app of ['Shop', '-shop', 'shop-', 'sh_op', 'sh.op', 'a'.repeat(64), '']) {
      expect(invalid(() => validateAppName(app, 'scope.app'))).toMatch(/^scope\.app: /);
    }
  });
});

describe('scopes', () => {
  it('maps the contract scope to a validated one and back', () => {
    const app = validateSecretScope(create(SecretScopeSchema, { kind: SecretScopeKind.APP, app: 'shop' }));
    expect(app).toEqual({ kind: 'app', app: 'shop' });
    expect(describeSecretScope(app)).toBe('app shop');
    expect(secretScopeToProto(app)).toMatchObject({ kind: SecretScopeKind.APP, app: 'shop' });
    const ws = validateSecretScope(create(SecretScopeSchema, { kind: SecretScopeKind.WORKSPACE }));
    expect(ws).toEqual({ kind: 'workspace' });
    expect(secretScopeToProto(ws)).toMatchObject({ kind: SecretScopeKind.WORKSPACE, app: '' });
  });

  it('refuses missing, unspecified, unknown and inconsistent scopes', () => {
    expect(invalid(() => validateSecretScope(undefined))).toMatch(/^scope: a scope is required/);
    expect(invalid(() => validateSecretScope(create(SecretScopeSchema, {})))).toMatch(/^scope\.kind: is unspecified/);
    expect(invalid(() => validateSecretScope(create(SecretScopeSchema, { kind: 7 as SecretScopeKind })))).toMatch(/^scope\.kind: 7 is not a known scope kind/);
    expect(invalid(() => validateSecretScope(create(SecretScopeSchema, { kind: SecretScopeKind.WORKSPACE, app: 'shop' })))).toMatch(
      /^scope\.app: must be empty for the workspace scope/,
    );
    expect(invalid(() => validateSecretScope(create(SecretScopeSchema, { kind: SecretScopeKind.APP })))).toBe('scope.app: an app name is required');
    expect(invalid(() => validateSecretScope(create(SecretScopeSchema, { kind: SecretScopeKind.APP, app: 'Shop' })))).toMatch(
      /^scope\.app: "Shop" is not a valid app name/,
    );
  });

  it('treats an absent optional scope as no filter', () => {
    expect(validateOptionalSecretScope(undefined)).toBeUndefined();
    expect(() => validateOptionalSecretScope(create(SecretScopeSchema, {}))).toThrow(ConnectError);
  });
});

describe('secret values', () => {
  it('accepts up to 64 KiB, empty included', () => {
    expect(validateSecretValue(new Uint8Array(0)).byteLength).toBe(0);
    expect(validateSecretValue(new Uint8Array(MAX_SECRET_VALUE_BYTES)).byteLength).toBe(65536);
  });

  it('refuses more with RESOURCE_EXHAUSTED, giving the size and never the value', () => {
    const value = Buffer.alloc(MAX_SECRET_VALUE_BYTES + 1, 'Q');
    const err = connectFailure(() => validateSecretValue(value));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/^value: 65537 bytes is over the 65536-byte limit/);
    expect(err.message).not.toContain('QQ');
  });
});
