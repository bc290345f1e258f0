// Secret values as wipeable, self-redacting bytes.
export { isSecretBytes, REDACTED_SECRET, SecretBytes, wipeAll } from './secret-bytes.js';
