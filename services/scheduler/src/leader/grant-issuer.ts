import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { type GrantAudienceName, type GrantSigningKey, signGrant } from '@shellwego/kit/grant';

export interface GrantSubject {
  readonly instanceId: string;
  readonly app: string;
  readonly nodeId: string;
  readonly secretNames: readonly string[];
  readonly imageDigest: string;
  /** What the node checks the rootfs bytes against; '' (a version stored before it was recorded) pins nothing, and the node refuses to start. */
  readonly rootfsSha256: string;
}

/** Signs the short-lived grants that go with assignments and secret refreshes, one per audience. */
export class GrantIssuer {
  constructor(
    private readonly key: GrantSigningKey,
    private readonly ttlMs: number,
  ) {}

  issue(subject: GrantSubject, audience: GrantAudienceName): Grant {
    const { rootfsSha256, ...rest } = subject;
    return signGrant({ ...rest, ...(rootfsSha256 === '' ? {} : { rootfsSha256 }), audience, ttlMs: this.ttlMs }, this.key);
  }
}
