import type http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { DescMethod, DescService } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import type { CallerIdentity } from '../auth/access-policy.js';
import { authorizeCall } from '../auth/authorize-call.js';
import { noPeerCertificate, peerCertificateOf } from '../pki/peer-certificate.js';
import type { RevocationList } from '../pki/revocation-list.js';
import type { TrustBundle } from '../pki/trust-bundle.js';
import { answerWithError } from './early-response.js';

type NodeHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
type AdmittedHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, caller: CallerIdentity) => void;

/** A call refused from its headers: nothing of its body was read. */
export interface GateRefusal {
  readonly method: DescMethod;
  readonly caller: CallerIdentity;
  readonly error: ConnectError;
  /** The TCP peer's address ("" if the socket is already gone). */
  readonly peerAddress: string;
  readonly seconds: number;
}

export interface HeaderGateOptions {
  /** Every service the server routes, the standard ones included. */
  readonly services: readonly DescService[];
  readonly revoked: RevocationList;
  /** The CAs whose signature decides which kind of principal a certificate may name. */
  readonly trust: TrustBundle;
  /** Hears of each refusal; the caller gets its answer once this settles (so an audit row is written first). */
  readonly onRefused: (refusal: GateRefusal) => void | Promise<void>;
}

export interface HeaderGate {
  readonly handler: NodeHandler;
  /** The caller the gate admitted this request as; undefined for a request it did not admit. */
  callerOf(req: http2.Http2ServerRequest): CallerIdentity | undefined;
}

/**
 * Authorizes every call on its HTTP/2 headers (the method path and the TLS peer's
 * certificate) before the request body is read, with the same decision the contract's
 * access options define (`authorizeCall`). A refused or unknown call is answered at once
 * and its body is never read: the stream's flow-control window is not reopened, so a
 * client can push at most one window (64 KiB) before the stream is reset. Only admitted
 * calls reach `next` (Connect), which routes by the same exact path, with their caller.
 */
export function headerGate(options: HeaderGateOptions, next: AdmittedHandler): HeaderGate {
  const methods = new Map<string, DescMethod>();
  for (const service of options.services) for (const method of service.methods) methods.set(`/${service.typeName}/${method.name}`, method);
  const known = options.services.map((s) => s.typeName).join(', ');
  const admitted = new WeakMap<http2.Http2ServerRequest, CallerIdentity>();
  const handler: NodeHandler = (req, res) => {
    const begun = performance.now();
    const contentType = String(req.headers['content-type'] ?? '');
    // connect-node looks handlers up by exactly this key.
    const path = req.url.split('?', 2)[0] ?? '';
    const method = methods.get(path);
    if (method === undefined) {
      answerWithError(req.stream, contentType, new ConnectError(`unknown method ${req.url}; this server serves ${known}`, Code.Unimplemented));
      return;
    }
    const socket = req.stream.session?.socket as TLSSocket | undefined;
    const decision = authorizeCall(method, socket ? peerCertificateOf(socket, options.trust) : noPeerCertificate, options.revoked);
    if (decision.admitted) {
      admitted.set(req, decision.caller);
      next(req, res, decision.caller);
      return;
    }
    const refusal: GateRefusal = {
      method,
      caller: decision.caller,
      error: decision.error,
      peerAddress: socket?.remoteAddress ?? '',
      seconds: (performance.now() - begun) / 1000,
    };
    const answer = () => answerWithError(req.stream, contentType, decision.error);
    const heard = options.onRefused(refusal);
    if (heard === undefined) answer();
    else heard.then(answer, answer);
  };
  return { handler, callerOf: (req) => admitted.get(req) };
}
