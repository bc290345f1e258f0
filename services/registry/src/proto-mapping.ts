import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ImageConfigSchema } from '@shellwego/contracts/common/v1/workload_pb';
import { type Image, ImageSchema, LayerSchema } from '@shellwego/contracts/registry/v1/registry_pb';
import type { ImageRecord } from './image-catalog.js';

export function imageToProto(image: ImageRecord): Image {
  const c = image.config;
  return create(ImageSchema, {
    digest: image.digest,
    tags: image.tags,
    config: create(ImageConfigSchema, {
      entrypoint: c.entrypoint,
      cmd: c.cmd,
      env: c.env,
      workingDir: c.workingDir,
      user: c.user,
      exposedPorts: c.exposedPorts,
      labels: c.labels,
    }),
    layers: image.layers.map((l) => create(LayerSchema, { digest: l.digest, mediaType: l.mediaType, sizeBytes: BigInt(l.size) })),
    platform: image.platform,
    createdAt: timestampFromDate(image.createdAt),
    sizeBytes: BigInt(image.layers.reduce((sum, l) => sum + l.size, 0)),
    rootfsSha256: image.rootfsSha256 ?? '',
  });
}
