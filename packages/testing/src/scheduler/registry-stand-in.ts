// A TEST STAND-IN for the registry service: serves only
// RegistryService.ResolveImage, over the same mTLS and contract-driven
// authorization as every shellwego server, from a map of references. The
// real registry is exercised across services by the node-agent end-to-end
// test; here it only has to pin references to digests.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { ImageConfigSchema } from '@shellwego/contracts/common/v1/workload_pb';
import { ImageSchema, RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import type { DevPki } from '@shellwego/kit/pki';
import { implement, type RunningServer, serve } from '@shellwego/kit/rpc';
import { pino } from 'pino';

export interface RegistryStandIn {
  readonly url: string;
  /** Makes `reference` resolvable; returns its digest (its rootfs sha256 is rootfsSha256Of(digest)). */
  add(reference: string, config?: { entrypoint?: string[]; cmd?: string[] }): string;
  /** References asked for so far. */
  readonly asked: string[];
  close(): Promise<void>;
}

export async function startRegistryStandIn(pki: DevPki, port = 0): Promise<RegistryStandIn> {
  const images = new Map<string, { digest: string; entrypoint: string[]; cmd: string[] }>();
  const asked: string[] = [];
  const server: RunningServer = await serve({
    name: 'registry-stand-in',
    host: '127.0.0.1',
    port,
    tls: {
      caPem: await readFile(pki.caCert, 'utf8'),
      certPem: await readFile(pki.processes.registry.cert, 'utf8'),
      keyPem: await readFile(pki.processes.registry.key, 'utf8'),
    },
    logger: pino({ level: 'silent' }),
    services: [
      implement(RegistryService, {
        resolveImage(request) {
          asked.push(request.reference);
          const image = images.get(request.reference);
          if (image === undefined) throw new ConnectError(`image ${request.reference} not found`, Code.NotFound);
          return {
            image: create(ImageSchema, {
              digest: image.digest,
              tags: [request.reference],
              config: create(ImageConfigSchema, { entrypoint: image.entrypoint, cmd: image.cmd }),
              rootfsSha256: rootfsSha256Of(image.digest),
            }),
          };
        },
      }),
    ],
  });
  return {
    url: server.url,
    asked,
    add(reference, config = {}) {
      const digest = `sha256:${createHash('sha256').update(reference).digest('hex')}`;
      images.set(reference, { digest, entrypoint: config.entrypoint ?? ['/bin/app'], cmd: config.cmd ?? ['--serve'] });
      return digest;
    },
    close: () => server.close(),
  };
}

/** The rootfs sha256 the stand-in reports for an image digest. */
export function rootfsSha256Of(digest: string): string {
  return `sha256:${createHash('sha256').update(`rootfs:${digest}`).digest('hex')}`;
}
