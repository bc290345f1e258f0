// GET /metrics over mutual TLS, as Prometheus scrapes it (metrics listeners require a client certificate).
import { request } from 'node:https';
import type { TlsMaterial } from '@shellwego/kit/rpc';

export interface Scrape {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

/** One request to a metrics URL presenting `tls` (or only trusting the CA, without a certificate). */
export function scrape(url: string, tls: TlsMaterial | Pick<TlsMaterial, 'caPem'>, method = 'GET'): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: tls.caPem, ...('certPem' in tls ? { cert: tls.certPem, key: tls.keyPem } : {}), agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
