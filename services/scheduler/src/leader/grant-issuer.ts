import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { type GrantSigningKey, signGrant } from '@shellwego/kit/grant';

export interface GrantSubject {
  readonly instanceId: string;
  readonly app: string;
  readonly nodeId: string;
  readonly secretNames: readonly string[];
  readonly imageDigest: string;
}

/** Signs the short-lived grants that go with assignments and secret refreshes. */
export class GrantIssuer {
  constructor(
    private readonly key: GrantSigningKey,
    private readonly ttlMs: number,
  ) {}

  issue(subject: GrantSubject): Grant {
    return signGrant({ ...subject, ttlMs: this.ttlMs }, this.key);
  }
}
