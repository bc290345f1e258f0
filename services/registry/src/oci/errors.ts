/** An archive, manifest, index or config that is malformed or unsupported. */
export class ImageFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageFormatError';
  }
}

/** A multi-platform image without the requested platform. */
export class PlatformNotFoundError extends Error {
  constructor(
    readonly platform: string,
    readonly available: readonly string[],
  ) {
    super(`the image has no ${platform} variant (available: ${available.length > 0 ? available.join(', ') : 'none'})`);
    this.name = 'PlatformNotFoundError';
  }
}
