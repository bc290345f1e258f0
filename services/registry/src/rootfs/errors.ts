/**
 * A layer the rootfs builder refuses: path traversal, a write through a
 * symlink, a tar bomb, an unsupported entry, or content that does not match
 * its diff_id. Names the layer and the entry so a person can find it.
 */
export class LayerRejectedError extends Error {
  constructor(
    readonly layerDigest: string,
    readonly entryPath: string,
    readonly reason: string,
  ) {
    super(`layer ${layerDigest}${entryPath ? `, entry ${JSON.stringify(entryPath)}` : ''}: ${reason}`);
    this.name = 'LayerRejectedError';
  }
}

/** mkfs.ext4 or another step of turning a tree into an image failed. */
export class RootfsBuildError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RootfsBuildError';
  }
}
