import type { Migration } from '../../../lib/db/index.js';

/** The scheduler schema, one migration per change, applied in name order at start-up. */
export const migrations: Record<string, Migration> = {};
