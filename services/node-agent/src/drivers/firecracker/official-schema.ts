import { fileURLToPath } from 'node:url';

/**
 * Firecracker's official API schema (Swagger 2.0), vendored from
 * shared/reference so the driver's requests are checked against it on every
 * machine. SHELLWEGO_FIRECRACKER_SCHEMA points elsewhere to check another
 * Firecracker release.
 */
export const officialSchemaPath = process.env.SHELLWEGO_FIRECRACKER_SCHEMA ?? fileURLToPath(new URL('./firecracker-api.yaml', import.meta.url));
