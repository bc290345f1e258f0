// The node's own identity on disk: its private key (made here, mode 0600, never sent anywhere),
// the certificate the scheduler signed for it, and the cluster CA. Written key first so a crash
// never leaves a certificate without its key.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { privateKeyMode, publicFileMode, writeFileAtomic } from '@shellwego/kit/pki';
import type { TlsMaterial } from '@shellwego/kit/rpc';

export interface NodeIdentity {
  readonly nodeId: string;
  readonly tls: TlsMaterial;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface IdentityPaths {
  readonly dir: string;
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
  readonly meta: string;
}

export function identityPaths(stateDir: string): IdentityPaths {
  const dir = join(stateDir, 'identity');
  return { dir, key: join(dir, 'node.key'), cert: join(dir, 'node.crt'), ca: join(dir, 'ca.crt'), meta: join(dir, 'node.json') };
}

/** True when the node has joined before (the launcher skips creating a join token then). */
export function hasIdentity(stateDir: string): boolean {
  const paths = identityPaths(stateDir);
  return existsSync(paths.key) && existsSync(paths.cert) && existsSync(paths.meta);
}

/** Checks the certificate against the key and names the node it is for; throws with what is wrong. */
export function identityOf(nodeId: string, tls: TlsMaterial): NodeIdentity {
  const cert = new X509Certificate(tls.certPem);
  if (!cert.checkPrivateKey(createPrivateKey(tls.keyPem))) {
    throw new Error('the node certificate does not belong to the node key');
  }
  const uri = `URI:spiffe://shellwego/node/${nodeId}`;
  if (!(cert.subjectAltName ?? '').split(', ').includes(uri)) {
    throw new Error(`the node certificate is not for node ${nodeId} (subject alt names: ${cert.subjectAltName ?? 'none'})`);
  }
  return { nodeId, tls, notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

export async function loadIdentity(stateDir: string): Promise<NodeIdentity | undefined> {
  const paths = identityPaths(stateDir);
  if (!hasIdentity(stateDir)) return undefined;
  const meta = JSON.parse(await readFile(paths.meta, 'utf8')) as { nodeId?: unknown };
  if (typeof meta.nodeId !== 'string' || meta.nodeId === '') {
    throw new Error(`${paths.meta} names no node id; remove ${paths.dir} and join again with a new token`);
  }
  const tls = {
    keyPem: await readFile(paths.key, 'utf8'),
    certPem: await readFile(paths.cert, 'utf8'),
    caPem: await readFile(paths.ca, 'utf8'),
  };
  return identityOf(meta.nodeId, tls);
}

export async function saveIdentity(stateDir: string, identity: NodeIdentity): Promise<void> {
  const paths = identityPaths(stateDir);
  await writeFileAtomic(paths.key, identity.tls.keyPem, privateKeyMode);
  await writeFileAtomic(paths.cert, identity.tls.certPem, publicFileMode);
  await writeFileAtomic(paths.ca, identity.tls.caPem, publicFileMode);
  await writeFileAtomic(paths.meta, `${JSON.stringify({ nodeId: identity.nodeId, notAfter: identity.notAfter.toISOString() })}\n`, publicFileMode);
}
