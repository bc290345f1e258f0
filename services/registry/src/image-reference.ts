import { isDigest } from './store/digest.js';

/** A reference a person typed that is not a valid image reference. */
export class InvalidReferenceError extends Error {
  constructor(
    readonly reference: string,
    reason: string,
  ) {
    super(`invalid image reference ${JSON.stringify(reference.slice(0, 200))}: ${reason}`);
    this.name = 'InvalidReferenceError';
  }
}

/** A stored image by name and tag. */
export interface TagReference {
  kind: 'tag';
  repository: string;
  tag: string;
}

/** A stored image by digest; `repository` is only what the reference said (name@digest). */
export interface DigestReference {
  kind: 'digest';
  repository?: string;
  digest: string;
}

export type LocalReference = TagReference | DigestReference;

/** An image in a remote distribution registry. */
export interface RemoteReference {
  /** host[:port] of the registry's API. */
  host: string;
  repository: string;
  /** The tag given, or "latest" when neither a tag nor a digest was. */
  tag?: string;
  /** When the reference pins one; it wins over the tag. */
  digest?: string;
}

const DEFAULT_TAG = 'latest';
const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';
const MAX_NAME_BYTES = 255;
// The distribution project's reference grammar.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::\d{1,5})?$/;
const TAG = /^[\w][\w.-]{0,127}$/;

interface Parsed {
  domain?: string;
  path: string;
  tag?: string;
  digest?: string;
}

/**
 * Splits `[domain/]path[:tag][@digest]`. The first component is a domain
 * when it has a `.` or `:` or is `localhost`, as Docker reads it.
 */
function split(text: string): Parsed {
  if (text === '') throw new InvalidReferenceError(text, 'it is empty');
  if (Buffer.byteLength(text) > 4 * MAX_NAME_BYTES) throw new InvalidReferenceError(text, 'it is too long');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new InvalidReferenceError(text, 'the digest must be sha256: followed by 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      throw new InvalidReferenceError(text, `tag ${JSON.stringify(tag)} must be letters, digits, _ . - (at most 128, not starting with . or -)`);
  }
  const parts = rest.split('/');
  let domain: string | undefined;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) throw new InvalidReferenceError(text, `${JSON.stringify(first)} is not a valid registry host[:port]`);
    domain = first;
    parts.shift();
  }
  const path = parts.join('/');
  if (Buffer.byteLength(path) > MAX_NAME_BYTES) throw new InvalidReferenceError(text, `the repository name is longer than ${MAX_NAME_BYTES} bytes`);
  for (const part of parts) {
    if (!PATH_COMPONENT.test(part)) {
      throw new InvalidReferenceError(text, `repository component ${JSON.stringify(part)} must be lowercase letters and digits, separated by . _ __ or -`);
    }
  }
  return { ...(domain ? { domain } : {}), path, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

function repositoryOf(p: Parsed): string {
  return p.domain ? `${p.domain}/${p.path}` : p.path;
}

/** `name[:tag]`, `name@sha256:...` or a bare `sha256:...` digest; a missing tag is "latest". */
export function parseLocalReference(text: string): LocalReference {
  if (isDigest(text)) return { kind: 'digest', digest: text };
  const p = split(text);
  if (p.digest) return { kind: 'digest', repository: repositoryOf(p), digest: p.digest };
  return { kind: 'tag', repository: repositoryOf(p), tag: p.tag ?? DEFAULT_TAG };
}

/** `name[:tag]` to store an image under; digests are not names. */
export function parseNameTag(text: string): TagReference {
  const p = split(text);
  if (p.digest) throw new InvalidReferenceError(text, 'a name to store an image under cannot carry a digest');
  return { kind: 'tag', repository: repositoryOf(p), tag: p.tag ?? DEFAULT_TAG };
}

export function formatNameTag(ref: { repository: string; tag: string }): string {
  return `${ref.repository}:${ref.tag}`;
}

/**
 * `[host[:port]/]repository[:tag|@digest]`. No host means Docker Hub, where
 * one-component names live under `library/`.
 */
export function parseRemoteReference(text: string): RemoteReference {
  const p = split(text);
  const host = !p.domain || p.domain === DOCKER_HUB || p.domain === `index.${DOCKER_HUB}` ? DOCKER_HUB_API : p.domain;
  const repository = host === DOCKER_HUB_API && !p.path.includes('/') ? `library/${p.path}` : p.path;
  const tag = p.tag ?? (p.digest ? undefined : DEFAULT_TAG);
  return { host, repository, ...(tag ? { tag } : {}), ...(p.digest ? { digest: p.digest } : {}) };
}

/**
 * The name a pulled image is stored under: the repository without the
 * registry host (and Docker Hub's library/) with the reference's tag; none
 * for a reference by digest alone.
 */
export function localNameOf(remote: RemoteReference): TagReference | undefined {
  if (!remote.tag) return undefined;
  const repository = remote.host === DOCKER_HUB_API ? remote.repository.replace(/^library\//, '') : remote.repository;
  return { kind: 'tag', repository, tag: remote.tag };
}
