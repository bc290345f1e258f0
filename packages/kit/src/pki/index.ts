export { CertificateAuthority, CsrError, createCsr, type IssuedCertificate, type IssuedKeyPair, type LeafOptions } from './certificate-authority.js';
export { isValidIdentitySegment, parseSpiffeId, serviceNames, spiffeId, trustDomain, type Principal, type ServiceName } from './identity.js';
export { fileExists, privateKeyMode, publicFileMode, writeFileAtomic } from './key-files.js';
export { noPeerCertificate, peerCertificateOf, type PeerCertificate } from './peer-certificate.js';
export { RevocationList, normalizeSerial } from './revocation-list.js';
export { ensureDevPki, devPkiPaths, type DevPki } from './dev-pki.js';
