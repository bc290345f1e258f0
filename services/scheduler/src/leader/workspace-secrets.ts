import { type Client, ConnectError } from '@connectrpc/connect';
import { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { createMtlsClient, expectedService, type TlsMaterial } from '@shellwego/kit/rpc';
import { SchedulerError } from '../model/scheduler-error.js';

/** The names of every workspace secret, asked each time a grant must name them all. */
export interface WorkspaceSecrets {
  names(): Promise<readonly string[]>;
}

/**
 * Asks the secrets service (SecretsService.ListWorkspaceSecretNames, names
 * only) as the scheduler service. Failures come back as UNAVAILABLE
 * SchedulerErrors naming the service.
 */
export class SecretsServiceWorkspace implements WorkspaceSecrets {
  private readonly client: Client<typeof SecretsService>;

  constructor(
    private readonly secretsUrl: string,
    tls: TlsMaterial,
    private readonly timeoutMs: number,
  ) {
    this.client = createMtlsClient(SecretsService, { baseUrl: secretsUrl, server: expectedService('secrets'), tls });
  }

  async names(): Promise<readonly string[]> {
    try {
      return (await this.client.listWorkspaceSecretNames({}, { timeoutMs: this.timeoutMs })).names;
    } catch (error) {
      throw new SchedulerError(
        'unavailable',
        `the secrets service at ${this.secretsUrl} did not list the workspace's secret names (${ConnectError.from(error).rawMessage})`,
      );
    }
  }
}
