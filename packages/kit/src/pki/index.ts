export { CertificateAuthority, CsrError, createCsr, type IssuedCertificate, type IssuedKeyPair, type LeafOptions } from './certificate-authority.js';
export { type DevPki, devPkiPaths, ensureDevPki } from './dev-pki.js';
export { isValidIdentitySegment, type Principal, parseSpiffeId, type ServiceName, serviceNames, spiffeId, trustDomain } from './identity.js';
export { fileExists, privateKeyMode, publicFileMode, writeFileAtomic } from './key-files.js';
export { noPeerCertificate, type PeerCertificate, peerCertificateOf, uriSubjectAltNames } from './peer-certificate.js';
export { type FollowOptions, normalizeSerial, type RevocationFeed, RevocationList } from './revocation-list.js';
