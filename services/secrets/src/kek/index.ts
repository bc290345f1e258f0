export { defaultMasterKeyPath, FileKekSource, MASTER_KEY_FILE_ENV } from './file-kek-source.js';
export type { KekErrorCode } from './kek-error.js';
export { KekError } from './kek-error.js';
export { kekIdFor, kekIdVersion } from './kek-id.js';
export { KekRing } from './kek-ring.js';
export type { KekSource } from './kek-source.js';
export { KEK_BYTES } from './key-file.js';
export type { LoadedKek } from './loaded-kek.js';
export { assertKeysCover, loadOrCreateKekRing } from './startup-check.js';
