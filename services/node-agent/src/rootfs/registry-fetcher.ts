// The rootfs cache's source: RegistryService.FetchRootfs with the instance's grant, through the
// registry's client helper (contiguous chunks, announced size, the sha256 the grant pins and the
// registry's trailer, atomic rename).

import { fetchRootfsToFile } from '@shellwego/clients/registry';
import type { ControlPlane } from '../control-plane.js';
import type { RootfsFetcher } from './rootfs-cache.js';

export function registryFetcher(controlPlane: ControlPlane, timeoutMs: number): RootfsFetcher {
  return async (imageDigest, grant, sha256, path, signal) => {
    const fetched = await fetchRootfsToFile(controlPlane.registry, {
      imageDigest,
      grant,
      sha256,
      path,
      timeoutMs,
      ...(signal === undefined ? {} : { signal }),
    });
    return { sizeBytes: fetched.sizeBytes, sha256: fetched.sha256 };
  };
}
