/**
 * Longest lifetime a grant may have. Grants are shown once, just before a
 * boot or a re-resolve, so anything longer only widens the replay window;
 * verifiers refuse longer grants as malformed and signers refuse to make them.
 */
export const MAX_GRANT_TTL_MS = 60 * 60 * 1000;

/** Clock difference between scheduler and verifier tolerated on issued_at. */
export const DEFAULT_GRANT_CLOCK_SKEW_MS = 30 * 1000;

/** OCI digest grammar ("algorithm:encoded"), e.g. "sha256:<64 hex>". */
export const IMAGE_DIGEST_PATTERN = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
