import { create } from '@bufbuild/protobuf';
import { type Client, Code, ConnectError } from '@connectrpc/connect';
import { type ImageConfig, ImageConfigSchema } from '@shellwego/contracts/common/v1/workload_pb';
import { RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { IMAGE_DIGEST_PATTERN, ROOTFS_SHA256_PATTERN } from '@shellwego/kit/grant';
import { createMtlsClient, expectedService, type TlsMaterial } from '@shellwego/kit/rpc';
import { SchedulerError } from '../model/scheduler-error.js';

export interface ResolvedImage {
  readonly digest: string;
  readonly config: ImageConfig;
  /** "sha256:<hex>" of the image's root filesystem, as the registry recorded it at import. */
  readonly rootfsSha256: string;
}

/** Pins an image reference to a digest and its root filesystem to a sha256. */
export interface ImageResolver {
  resolve(reference: string): Promise<ResolvedImage>;
}

/**
 * Asks the registry (RegistryService.ResolveImage) as the scheduler service.
 * Registry errors come back as SchedulerErrors about `spec.image` of the kind
 * whose code the contract promises DeployApp callers: NOT_FOUND,
 * INVALID_ARGUMENT, or UNAVAILABLE when the registry cannot be reached.
 */
export class RegistryImageResolver implements ImageResolver {
  private readonly client: Client<typeof RegistryService>;

  constructor(
    private readonly registryUrl: string,
    tls: TlsMaterial,
    private readonly timeoutMs: number,
  ) {
    this.client = createMtlsClient(RegistryService, { baseUrl: registryUrl, server: expectedService('registry'), tls });
  }

  async resolve(reference: string): Promise<ResolvedImage> {
    let image;
    try {
      ({ image } = await this.client.resolveImage({ reference }, { timeoutMs: this.timeoutMs }));
    } catch (error) {
      throw this.translate(error, reference);
    }
    if (image === undefined || !IMAGE_DIGEST_PATTERN.test(image.digest)) {
      throw new SchedulerError('unavailable', `the registry at ${this.registryUrl} answered ResolveImage for ${reference} without a digest`);
    }
    if (!ROOTFS_SHA256_PATTERN.test(image.rootfsSha256)) {
      throw new SchedulerError(
        'unavailable',
        `the registry at ${this.registryUrl} answered ResolveImage for ${reference} without the sha256 of its root filesystem, which every grant must pin; upgrade the registry`,
      );
    }
    return { digest: image.digest, config: image.config ?? create(ImageConfigSchema), rootfsSha256: image.rootfsSha256 };
  }

  private translate(error: unknown, reference: string): SchedulerError {
    const cause = ConnectError.from(error);
    switch (cause.code) {
      case Code.NotFound:
        return new SchedulerError('not-found', `spec.image: ${reference} is not in the registry; import or pull it first (shellwego image import/pull)`);
      case Code.InvalidArgument:
        return new SchedulerError('invalid-argument', `spec.image: the registry refused ${reference}: ${cause.rawMessage}`);
      case Code.Unavailable:
      case Code.DeadlineExceeded:
      case Code.Unknown:
      case Code.Internal:
      case Code.Unimplemented:
        return new SchedulerError(
          'unavailable',
          `the registry at ${this.registryUrl} cannot resolve images right now (${cause.rawMessage}); retry when it is up`,
        );
      default:
        return new SchedulerError(
          'unavailable',
          `the registry at ${this.registryUrl} refused to resolve ${reference} for the scheduler (${Code[cause.code]}: ${cause.rawMessage})`,
        );
    }
  }
}
