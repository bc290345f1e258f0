import { describe, expect, it } from 'vitest';
import { InvalidReferenceError, localNameOf, parseLocalReference, parseNameTag, parseRemoteReference } from './image-reference.js';

const digest = `sha256:${'ab'.repeat(32)}`;

describe('image references', () => {
  it('reads local references: name, name:tag, name@digest, a bare digest', () => {
    expect(parseLocalReference('busybox')).toEqual({ kind: 'tag', repository: 'busybox', tag: 'latest' });
    expect(parseLocalReference('team/app:1.2.3')).toEqual({ kind: 'tag', repository: 'team/app', tag: '1.2.3' });
    expect(parseLocalReference('localhost:5000/app:v1')).toEqual({ kind: 'tag', repository: 'localhost:5000/app', tag: 'v1' });
    expect(parseLocalReference(`app@${digest}`)).toEqual({ kind: 'digest', repository: 'app', digest });
    expect(parseLocalReference(digest)).toEqual({ kind: 'digest', digest });
  });

  it('refuses what is not a reference, naming the problem', () => {
    for (const [bad, reason] of [
      ['', 'empty'],
      ['UPPER/case', 'lowercase'],
      ['app:', 'tag'],
      ['app:-x', 'tag'],
      ['a//b', 'repository component'],
      ['app@sha256:1234', 'digest'],
      ['../etc/passwd', 'registry host'],
    ] as const) {
      const err = (() => {
        try {
          parseLocalReference(bad);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, bad).toBeInstanceOf(InvalidReferenceError);
      expect((err as Error).message, bad).toContain(reason);
    }
    expect(() => parseNameTag(`app@${digest}`)).toThrow(InvalidReferenceError);
  });

  it('reads remote references with Docker Hub defaults and names pulled images without the host', () => {
    expect(parseRemoteReference('busybox')).toEqual({ host: 'registry-1.docker.io', repository: 'library/busybox', tag: 'latest' });
    expect(parseRemoteReference('docker.io/team/app:2')).toEqual({ host: 'registry-1.docker.io', repository: 'team/app', tag: '2' });
    const local = parseRemoteReference('127.0.0.1:5000/test/busybox:1.0');
    expect(local).toEqual({ host: '127.0.0.1:5000', repository: 'test/busybox', tag: '1.0' });
    expect(localNameOf(local)).toEqual({ kind: 'tag', repository: 'test/busybox', tag: '1.0' });
    expect(localNameOf(parseRemoteReference('busybox:1.36'))).toEqual({ kind: 'tag', repository: 'busybox', tag: '1.36' });
    const pinned = parseRemoteReference(`ghcr.io/org/app@${digest}`);
    expect(pinned).toEqual({ host: 'ghcr.io', repository: 'org/app', digest });
    expect(localNameOf(pinned)).toBeUndefined();
  });
});
