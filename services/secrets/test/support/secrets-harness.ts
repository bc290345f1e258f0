import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Client, Interceptor } from '@connectrpc/connect';
import { createClient, createRouterTransport } from '@connectrpc/connect';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { callerKey } from '@shellwego/kit/auth';
import type { GrantClaimsInput, GrantSigningKey, GrantVerifier } from '@shellwego/kit/grant';
import { createGrantVerifier, generateGrantKeyPair, loadGrantSigningKey, signGrant } from '@shellwego/kit/grant';
import { createLogger } from '@shellwego/kit/log';
import type { Principal } from '@shellwego/kit/pki';
import type { KekSource } from '../../src/kek/index.js';
import { FileKekSource } from '../../src/kek/index.js';
import type { SecretsDomain, SecretsDomainOptions } from '../../src/secrets-domain.js';
import { openSecretsDomain } from '../../src/secrets-domain.js';

export const ADMIN: Principal = { kind: 'user', name: 'admin', roles: ['admin'] };
export const DIGEST = `sha256:${'ab'.repeat(32)}`;

export interface HarnessOptions {
  /** Default memory:// (in-memory PGlite). */
  readonly database?: string;
  /** Default: a FileKekSource on `<temp dir>/keys/master.key`. */
  readonly kekSource?: KekSource;
  readonly keepVersions?: number;
  readonly rewrapBatchSize?: number;
  readonly encryptionLimit?: number;
  readonly now?: () => Date;
}

/**
 * The secrets domain in this process, on a real database and real key
 * files, with clients that call the real handlers through connect's
 * in-memory router (the caller's principal set as the authorizer would).
 */
export class SecretsHarness {
  readonly logLines: string[];
  readonly grantKey: GrantSigningKey;
  readonly verifier: GrantVerifier;
  readonly dir: string;
  readonly options: HarnessOptions;
  #domain: SecretsDomain;

  private constructor(dir: string, options: HarnessOptions, grantKey: GrantSigningKey, verifier: GrantVerifier, logLines: string[], domain: SecretsDomain) {
    this.dir = dir;
    this.options = options;
    this.grantKey = grantKey;
    this.verifier = verifier;
    this.logLines = logLines;
    this.#domain = domain;
  }

  static async open(options: HarnessOptions = {}): Promise<SecretsHarness> {
    const dir = await mkdtemp(join(tmpdir(), 'shellwego-secrets-test-'));
    const pair = generateGrantKeyPair();
    const verifier = createGrantVerifier([pair.publicKeyPem]);
    const logLines: string[] = [];
    const harnessOptions = { ...options, kekSource: options.kekSource ?? new FileKekSource(join(dir, 'keys', 'master.key')) };
    try {
      const domain = await openSecretsDomain(domainOptions(harnessOptions, verifier, logLines));
      return new SecretsHarness(dir, harnessOptions, loadGrantSigningKey(pair.privateKeyPem), verifier, logLines, domain);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get domain(): SecretsDomain {
    return this.#domain;
  }

  get keyFile(): string {
    const source = this.options.kekSource;
    if (!(source instanceof FileKekSource)) throw new Error('this harness does not use master key files');
    return source.path;
  }

  /** A client whose calls reach the handlers as `principal`. */
  client(principal: Principal = ADMIN): Client<typeof SecretsService> {
    const as: Interceptor = (next) => (req) => {
      req.contextValues.set(callerKey, principal);
      return next(req);
    };
    const transport = createRouterTransport((router) => this.#domain.service.register(router), { router: { interceptors: [as] } });
    return createClient(SecretsService, transport);
  }

  /** A grant signed with this harness's trusted key. */
  grant(claims: Partial<GrantClaimsInput> & { nodeId: string; app: string; secretNames: readonly string[] }, now?: Date): Grant {
    const input = { audience: 'secrets', instanceId: 'i-1', imageDigest: DIGEST, ttlMs: 60_000, ...claims } as GrantClaimsInput;
    return signGrant(input, this.grantKey, now);
  }

  /** Closes the domain and opens it again on the same database and keys (a restart). */
  async reopen(overrides: Partial<HarnessOptions> = {}): Promise<void> {
    await this.#domain.close();
    const next = { ...this.options, ...overrides };
    this.#domain = await openSecretsDomain(domainOptions(next, this.verifier, this.logLines));
  }

  async close(): Promise<void> {
    await this.#domain.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

function domainOptions(options: HarnessOptions, verifier: GrantVerifier, logLines: string[]): SecretsDomainOptions {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((line) => line !== ''),
      );
      callback();
    },
  });
  return {
    database: options.database ?? 'memory://',
    kekSource: options.kekSource as KekSource,
    verifier,
    keepVersions: options.keepVersions ?? 10,
    rewrapBatchSize: options.rewrapBatchSize ?? 200,
    logger: createLogger({ service: 'secrets', destination: sink, level: 'debug' }),
    ...(options.encryptionLimit === undefined ? {} : { encryptionLimit: options.encryptionLimit }),
    ...(options.now === undefined ? {} : { now: options.now }),
  };
}
