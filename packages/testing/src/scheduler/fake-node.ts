// A test client playing a node agent: a real RPC client of the real
// scheduler (its own node certificate, a real mTLS Session), whose "VMs" are
// entries in a map. Reusable by any suite that needs nodes without VMs.
import { EventEmitter } from 'node:events';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { type Client, Code, ConnectError, createClient } from '@connectrpc/connect';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import {
  type Assign,
  type JoinNodeResponse,
  NodeService,
  type SessionRequestSchema,
  type SessionResponse,
  type Stop,
} from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { PushQueue } from '@shellwego/kit/async';
import { createCsr } from '@shellwego/kit/pki';
import { createMtlsTransport, expectedService, isConnectionFailure, type TlsMaterial } from '@shellwego/kit/rpc';

type SessionRequestInit = MessageInitShape<typeof SessionRequestSchema>;

export interface Capacity {
  readonly cpuMillis: number;
  readonly memoryMib: number;
  readonly maxInstances: number;
}

/**
 * What the node does with an Assign: `healthy` reports PULLING..HEALTHY,
 * `running` stops at RUNNING (never healthy), `fail` reports FAILED,
 * `ignore` records it and reports nothing; or a function of its own.
 */
export type AssignBehaviour = 'healthy' | 'running' | 'fail' | 'ignore' | ((assign: Assign, node: FakeNode) => void);

export interface FakeNodeOptions {
  readonly nodeId: string;
  /** The node's own certificate and key, and the cluster CA. */
  readonly tls: TlsMaterial;
  /** Scheduler endpoints, tried in turn: a standby answers UNAVAILABLE and the next one is tried. */
  readonly schedulerUrls: readonly string[];
  readonly capacity: Capacity;
  readonly labels?: Record<string, string>;
  readonly hostname?: string;
  readonly heartbeatIntervalMs: number;
  readonly behaviour?: AssignBehaviour;
  readonly reconnectDelayMs?: number;
  /** The address the built-in behaviours give an instance, reported from BOOTING on (as a node with networking does); default none. */
  readonly addressFor?: (instanceId: string) => string;
}

export interface JoinedIdentity {
  readonly nodeId: string;
  readonly tls: TlsMaterial;
  readonly response: JoinNodeResponse;
}

/** Codes after which reconnecting cannot help (or would fight a newer session of the same node). */
const FINAL_CODES = new Set([Code.Aborted, Code.PermissionDenied, Code.Unauthenticated, Code.FailedPrecondition, Code.InvalidArgument]);

export class FakeNode {
  /** Every Assign received, in order. */
  readonly assignments: Assign[] = [];
  /** Every Stop received, in order. */
  readonly stops: Stop[] = [];
  /** Every message received, in order. */
  readonly received: SessionResponse[] = [];
  /** What the node runs: instance id -> last state it reported. */
  readonly instances = new Map<string, InstanceState>();
  /** Instance id -> the address it last reported for it (sent again in Hello), while it runs. */
  readonly addresses = new Map<string, string>();
  /** Sessions opened so far, and where the last one went. */
  sessions = 0;
  connectedUrl: string | undefined;
  /** When the last heartbeat was handed to the session (ms since epoch). */
  lastHeartbeatAt = 0;
  /** Why the last session ended. */
  lastError: ConnectError | undefined;
  behaviour: AssignBehaviour;

  private readonly changes = new EventEmitter();
  private readonly clients = new Map<string, Client<typeof NodeService>>();
  private outbound: PushQueue<SessionRequestInit> | undefined;
  private abort: AbortController | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private heartbeatsPaused = false;
  private running: Promise<void> | undefined;
  private stopped = true;
  /** Bumped by kill(): a session loop from before a kill never carries on after a restart. */
  private generation = 0;

  constructor(readonly options: FakeNodeOptions) {
    this.behaviour = options.behaviour ?? 'healthy';
    this.changes.setMaxListeners(100);
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  /** JoinNode without a client certificate: a CSR made here, a certificate back. */
  static async join(
    schedulerUrl: string,
    caPem: string,
    token: string,
    info: { hostname?: string; labels?: Record<string, string> } = {},
  ): Promise<JoinedIdentity> {
    const { csrPem, keyPem } = await createCsr(info.hostname ?? 'fake-node');
    const anonymous = createClient(NodeService, createMtlsTransport({ baseUrl: schedulerUrl, server: expectedService('scheduler'), tls: { caPem } }));
    const response = await anonymous.joinNode({ token, csrPem, info: { hostname: info.hostname ?? 'fake-node', labels: info.labels ?? {} } });
    return { nodeId: response.nodeId, tls: { caPem: response.caPem, certPem: response.certificatePem, keyPem }, response };
  }

  /** Opens the session and keeps it open (reconnecting) until kill() or stop(). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.running = this.run(this.generation);
  }

  /** The node dies: the stream is cut, heartbeats stop, nothing reconnects. Its "VMs" stay in `instances`. */
  kill(): void {
    this.stopped = true;
    this.generation++;
    this.abort?.abort();
    clearInterval(this.heartbeat);
  }

  async stop(): Promise<void> {
    this.kill();
    await this.running;
  }

  pauseHeartbeats(paused: boolean): void {
    this.heartbeatsPaused = paused;
  }

  /** Reports a state change of an instance, as an agent does. */
  report(instanceId: string, state: InstanceState, extra: { reason?: string; exitCode?: number; address?: string } = {}): void {
    if (state === InstanceState.STOPPED || state === InstanceState.FAILED) {
      this.instances.delete(instanceId);
      this.addresses.delete(instanceId);
    } else {
      this.instances.set(instanceId, state);
      if (extra.address !== undefined) this.addresses.set(instanceId, extra.address);
    }
    const address = this.addresses.get(instanceId) ?? '';
    this.send({
      msg: {
        case: 'instanceEvent',
        value: {
          instanceId,
          state,
          time: timestampNow(),
          reason: extra.reason ?? '',
          address,
          ...(extra.exitCode === undefined ? {} : { exitCode: extra.exitCode }),
        },
      },
    });
  }

  /** Sends any session message as is (for nonsense tests). */
  send(request: SessionRequestInit): void {
    this.outbound?.push(request);
  }

  /** Resolves with the first non-undefined value of `check`, re-checked on every message. */
  waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value === undefined) return false;
        cleanup();
        resolve(value);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`node ${this.nodeId}: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.changes.off('change', attempt);
      };
      this.changes.on('change', attempt);
      attempt();
    });
  }

  /** Resolves once the node has received an Assign for `instanceId`. */
  waitForAssign(predicate: (assign: Assign) => boolean, timeoutMs: number, what = 'an assignment'): Promise<Assign> {
    return this.waitFor(() => this.assignments.find(predicate), timeoutMs, what);
  }

  private client(url: string): Client<typeof NodeService> {
    let client = this.clients.get(url);
    if (client === undefined) {
      client = createClient(NodeService, createMtlsTransport({ baseUrl: url, server: expectedService('scheduler'), tls: this.options.tls }));
      this.clients.set(url, client);
    }
    return client;
  }

  private async run(generation: number): Promise<void> {
    let attempt = 0;
    const current = () => !this.stopped && this.generation === generation;
    while (current()) {
      const url = this.options.schedulerUrls[attempt % this.options.schedulerUrls.length] as string;
      const abort = new AbortController();
      const outbound = new PushQueue<SessionRequestInit>();
      this.abort = abort;
      this.outbound = outbound;
      outbound.push({
        msg: {
          case: 'hello',
          value: {
            capacity: this.options.capacity,
            labels: this.options.labels ?? {},
            running: [...this.instances].map(([instanceId, state]) => ({ instanceId, state, address: this.addresses.get(instanceId) ?? '' })),
            driver: 'fake',
            hostname: this.options.hostname ?? this.nodeId,
          },
        },
      });
      const heartbeat = setInterval(() => {
        if (this.heartbeatsPaused) return;
        outbound.push({ msg: { case: 'heartbeat', value: { instanceCount: this.instances.size } } });
        this.lastHeartbeatAt = Date.now();
      }, this.options.heartbeatIntervalMs);
      this.heartbeat = heartbeat;
      this.sessions++;
      this.connectedUrl = url;
      this.emit();
      let final = false;
      try {
        for await (const response of this.client(url).session(outbound, { signal: abort.signal, timeoutMs: 0 })) {
          this.handle(response);
        }
        this.lastError = undefined;
      } catch (error) {
        this.lastError = ConnectError.from(error);
        // A reset connection surfaces as ABORTED too; only a status the scheduler sent is final.
        final = FINAL_CODES.has(this.lastError.code) && !isConnectionFailure(this.lastError);
      } finally {
        clearInterval(heartbeat);
        outbound.close();
        if (this.outbound === outbound) {
          this.outbound = undefined;
          this.connectedUrl = undefined;
        }
        this.emit();
      }
      if (final && current()) {
        this.stopped = true;
        break;
      }
      attempt++;
      await new Promise((resolve) => setTimeout(resolve, this.options.reconnectDelayMs ?? 100));
    }
  }

  private handle(response: SessionResponse): void {
    this.received.push(response);
    const msg = response.msg;
    if (msg.case === 'assign') {
      this.assignments.push(msg.value);
      const id = msg.value.spec?.instanceId ?? '';
      if (!this.instances.has(id)) {
        this.instances.set(id, InstanceState.ASSIGNED);
        this.act(msg.value, id);
      }
    } else if (msg.case === 'stop') {
      this.stops.push(msg.value);
      if (this.instances.has(msg.value.instanceId)) {
        this.report(msg.value.instanceId, InstanceState.STOPPING);
        this.report(msg.value.instanceId, InstanceState.STOPPED);
      }
    }
    this.emit();
  }

  private act(assign: Assign, id: string): void {
    const behaviour = this.behaviour;
    if (typeof behaviour === 'function') {
      behaviour(assign, this);
      return;
    }
    if (behaviour === 'ignore') return;
    this.report(id, InstanceState.PULLING);
    if (behaviour === 'fail') {
      this.report(id, InstanceState.FAILED, { reason: 'fake node: the workload exited', exitCode: 1 });
      return;
    }
    const address = this.options.addressFor?.(id);
    this.report(id, InstanceState.BOOTING, address === undefined ? {} : { address });
    this.report(id, InstanceState.STARTING);
    this.report(id, InstanceState.RUNNING);
    if (behaviour === 'healthy') this.report(id, InstanceState.HEALTHY);
  }

  private emit(): void {
    this.changes.emit('change');
  }
}
