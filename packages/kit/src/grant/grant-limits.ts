/**
 * Longest lifetime a grant may have. Grants are shown once, just before a
 * boot or a re-resolve, and the scheduler issues a fresh one for every start
 * and refresh, so anything longer only widens the replay window; verifiers
 * refuse longer grants as malformed and signers refuse to make them.
 */
export const MAX_GRANT_TTL_MS = 10 * 60 * 1000;

/** The lifetime the scheduler gives grants unless configured otherwise. */
export const DEFAULT_GRANT_TTL_MS = 2 * 60 * 1000;

/** Clock difference between scheduler and verifier tolerated on issued_at. */
export const DEFAULT_GRANT_CLOCK_SKEW_MS = 30 * 1000;

/** OCI digest grammar ("algorithm:encoded"), e.g. "sha256:<64 hex>". */
export const IMAGE_DIGEST_PATTERN = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** A root filesystem's sha256 as grants carry it. */
export const ROOTFS_SHA256_PATTERN = /^sha256:[0-9a-f]{64}$/;
