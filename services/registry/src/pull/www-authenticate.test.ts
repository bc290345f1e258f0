import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from './www-authenticate.js';

describe('parseWwwAuthenticate', () => {
  it('reads a bearer challenge with quoted parameters containing commas and colons', () => {
    expect(parseWwwAuthenticate('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
    ]);
  });

  it('reads basic challenges, unquoted values, escapes and several challenges', () => {
    expect(parseWwwAuthenticate('Basic realm="a \\"quoted\\" realm", charset=UTF-8, Bearer realm=https://t.example/x')).toEqual([
      { scheme: 'basic', params: { realm: 'a "quoted" realm', charset: 'UTF-8' } },
      { scheme: 'bearer', params: { realm: 'https://t.example/x' } },
    ]);
    expect(parseWwwAuthenticate('')).toEqual([]);
  });
});
