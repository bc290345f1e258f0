export { CertificateAuthority, CsrError, createCsr, type IssuedCertificate, type IssuedKeyPair, type LeafOptions } from './certificate-authority.js';
export { type DevPki, devPkiPaths, ensureDevPki } from './dev-pki.js';
export { isValidIdentitySegment, type Principal, parseSpiffeId, type ServiceName, serviceNames, spiffeId, trustDomain } from './identity.js';
export { issuerRefusal } from './issuer-policy.js';
export { fileExists, privateKeyMode, publicFileMode, writeFileAtomic } from './key-files.js';
export {
  certifyNodeIntermediate,
  introduceNodeIntermediate,
  NODE_CA_VALIDITY_DAYS,
  type NodeCaPaths,
  type RootPaths,
  retireNodeIntermediate,
  rootForIntermediates,
} from './node-intermediates.js';
export { noPeerCertificate, type PeerCertificate, peerCertificateOf, uriSubjectAltNames } from './peer-certificate.js';
export { type FollowOptions, normalizeSerial, type RevocationFeed, RevocationList } from './revocation-list.js';
export {
  type CertificateIssuer,
  displayName,
  type IssuerRole,
  intermediateProblem,
  pemCertificates,
  TrustBundle,
  TrustBundleError,
  type TrustBundleReload,
} from './trust-bundle.js';
