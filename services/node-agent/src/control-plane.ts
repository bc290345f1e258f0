// The control-plane clients a node uses, all over mTLS with the node's own certificate; rebuilt
// when the certificate is renewed (calls in flight finish on their old connection).
import type { Client } from '@connectrpc/connect';
import { RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import type { NodeIdentity } from './identity/identity-store.js';

const MIB = 1024 * 1024;

export interface ControlPlaneUrls {
  readonly secrets: string;
  readonly registry: string;
}

export class ControlPlane {
  private schedulers = new Map<string, Client<typeof NodeService>>();
  private secretsClient: Client<typeof SecretsService> | undefined;
  private registryClient: Client<typeof RegistryService> | undefined;

  constructor(
    private current: NodeIdentity,
    private readonly urls: ControlPlaneUrls,
  ) {}

  get identity(): NodeIdentity {
    return this.current;
  }

  get nodeId(): string {
    return this.current.nodeId;
  }

  setIdentity(identity: NodeIdentity): void {
    this.current = identity;
    this.schedulers = new Map();
    this.secretsClient = undefined;
    this.registryClient = undefined;
  }

  scheduler(url: string): Client<typeof NodeService> {
    let client = this.schedulers.get(url);
    if (client === undefined) {
      client = createMtlsClient(NodeService, { baseUrl: url, server: expectedService('scheduler'), tls: this.current.tls });
      this.schedulers.set(url, client);
    }
    return client;
  }

  get secrets(): Client<typeof SecretsService> {
    this.secretsClient ??= createMtlsClient(SecretsService, { baseUrl: this.urls.secrets, server: expectedService('secrets'), tls: this.current.tls });
    return this.secretsClient;
  }

  get registry(): Client<typeof RegistryService> {
    // Rootfs chunks are 1 MiB; leave room for framing.
    this.registryClient ??= createMtlsClient(RegistryService, {
      baseUrl: this.urls.registry,
      server: expectedService('registry'),
      tls: this.current.tls,
      readMaxBytes: 8 * MIB,
    });
    return this.registryClient;
  }
}
