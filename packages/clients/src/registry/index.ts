// The registry's clients: a RegistryService client tuned for rootfs streams, and the fetch that
// verifies a root filesystem against the digest it must have before anyone uses it.
export { type FetchedRootfs, type FetchRootfsOptions, fetchRootfsToFile, partialPathOf, RootfsVerificationError } from './fetch-rootfs.js';
export { createRootfsClient } from './rootfs-client.js';
