// Firecracker's API: HTTP/1.1 with JSON bodies on a Unix socket. Success is 204 (or 200 with a
// body); failures carry {"fault_message": "..."}.
import { request } from 'node:http';
import { VmDriverError } from '../types.js';

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

export function firecrackerApiCall(socketPath: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        socketPath,
        // One connection per call: a handful of calls per VM, and no pooled socket outlives the VMM.
        agent: false,
        method,
        path,
        // Firecracker ignores Host, but HTTP/1.1 requires one.
        headers: {
          Host: 'localhost',
          Accept: 'application/json',
          ...(payload !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new Error('response too large'));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          if (text !== '') {
            try {
              parsed = JSON.parse(text) as unknown;
            } catch {
              // Not JSON: keep the text for the error message.
            }
          }
          resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Sends one request; anything but 2xx becomes a VmDriverError quoting Firecracker's fault_message. */
export async function firecrackerApiPut(socketPath: string, path: string, body: unknown, timeoutMs: number): Promise<void> {
  let response: ApiResponse;
  try {
    response = await firecrackerApiCall(socketPath, 'PUT', path, body, timeoutMs);
  } catch (err) {
    throw new VmDriverError('boot-failed', `Firecracker API PUT ${path} failed: ${(err as Error).message}`);
  }
  if (response.status < 200 || response.status > 299) {
    throw new VmDriverError('boot-failed', `Firecracker refused PUT ${path} (HTTP ${response.status}): ${faultMessage(response.body)}`);
  }
}

function faultMessage(body: unknown): string {
  if (typeof body === 'object' && body !== null && typeof (body as { fault_message?: unknown }).fault_message === 'string') {
    return (body as { fault_message: string }).fault_message;
  }
  return typeof body === 'string' ? body.slice(0, 300) : 'no fault message';
}
