// Secret values as wipeable, self-redacting bytes.
export { SecretBytes, REDACTED_SECRET, isSecretBytes, wipeAll } from './secret-bytes.js';
