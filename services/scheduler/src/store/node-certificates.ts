import { type CertificateAuthority, CsrError, type IssuedCertificate } from '@shellwego/kit/pki';
import { SchedulerError } from '../model/scheduler-error.js';

// A hostname that is a valid DNS name also goes into the certificate, so the node agent can serve with it.
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * Signs node CSRs with the node-issuing intermediate: the identity comes from here, only the key
 * from the CSR. A node gets its certificate followed by the intermediate's, the chain it presents
 * when it serves and when it calls.
 */
export class NodeCertificates {
  constructor(
    private readonly ca: CertificateAuthority,
    /** The trust bundle (root and trusted node intermediates) the node verifies the control plane with. */
    readonly caPem: string,
    private readonly validityMs: number,
  ) {}

  /** Throws an invalid-argument SchedulerError naming csr_pem for a CSR that cannot be signed. */
  async issue(csrPem: string, nodeId: string, hostname: string): Promise<IssuedCertificate> {
    try {
      const issued = await this.ca.signCsr(csrPem, {
        principal: { kind: 'node', id: nodeId },
        dnsNames: DNS_NAME.test(hostname) ? [hostname.toLowerCase()] : [],
        validityMs: this.validityMs,
      });
      return { ...issued, certPem: `${issued.certPem.trimEnd()}\n${this.ca.certPem.trimEnd()}\n` };
    } catch (error) {
      if (error instanceof CsrError) throw new SchedulerError('invalid-argument', `csr_pem: ${error.message}`);
      throw error;
    }
  }
}
