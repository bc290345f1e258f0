import { CertificateAuthority, CsrError, type IssuedCertificate } from '@shellwego/kit/pki';
import { SchedulerError } from '../model/scheduler-error.js';

// A hostname that is a valid DNS name also goes into the certificate, so the node agent can serve with it.
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Signs node CSRs with the cluster CA: the identity comes from here, only the key from the CSR. */
export class NodeCertificates {
  private constructor(
    private readonly ca: CertificateAuthority,
    private readonly validityMs: number,
  ) {}

  static async load(caCertPem: string, caKeyPem: string, validityMs: number): Promise<NodeCertificates> {
    return new NodeCertificates(await CertificateAuthority.load(caCertPem, caKeyPem), validityMs);
  }

  get caPem(): string {
    return this.ca.certPem;
  }

  /** Throws an invalid-argument SchedulerError naming csr_pem for a CSR that cannot be signed. */
  async issue(csrPem: string, nodeId: string, hostname: string): Promise<IssuedCertificate> {
    try {
      return await this.ca.signCsr(csrPem, {
        principal: { kind: 'node', id: nodeId },
        dnsNames: DNS_NAME.test(hostname) ? [hostname.toLowerCase()] : [],
        validityMs: this.validityMs,
      });
    } catch (error) {
      if (error instanceof CsrError) throw new SchedulerError('invalid-argument', `csr_pem: ${error.message}`);
      throw error;
    }
  }
}
