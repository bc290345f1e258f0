import { CertificateAuthority, type Principal } from '@shellwego/kit/pki';
import type { TlsMaterial } from '@shellwego/kit/rpc';

/** A throwaway CA with helpers to mint TLS material for tests. */
export class TestPki {
  private constructor(readonly ca: CertificateAuthority) {}

  static async create(): Promise<TestPki> {
    return new TestPki(await CertificateAuthority.create({ commonName: 'test CA' }));
  }

  async tls(principal: Principal, validityMs = 3_600_000): Promise<TlsMaterial & { serial: string }> {
    const issued = await this.ca.issue({
      principal,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validityMs,
    });
    return { caPem: this.ca.certPem, certPem: issued.certPem, keyPem: issued.keyPem, serial: issued.serial };
  }

  admin(): Promise<TlsMaterial & { serial: string }> {
    return this.tls({ kind: 'user', name: 'admin', roles: ['admin'] });
  }

  node(id: string): Promise<TlsMaterial & { serial: string }> {
    return this.tls({ kind: 'node', id });
  }

  service(name: 'scheduler' | 'secrets' | 'registry'): Promise<TlsMaterial & { serial: string }> {
    return this.tls({ kind: 'service', name });
  }
}
