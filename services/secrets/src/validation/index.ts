export { APP_NAME_MAX_LENGTH, appNameProblem, validateAppName } from './app-name.js';
export { quoteInput } from './quote-input.js';
export {
  RESERVED_SECRET_NAME_PREFIX,
  SECRET_NAME_MAX_LENGTH,
  secretNameProblem,
  validateSecretName,
  validateSecretNames,
} from './secret-name.js';
export type { SecretScopeRef } from './secret-scope.js';
export {
  describeSecretScope,
  secretScopeToProto,
  validateOptionalSecretScope,
  validateSecretScope,
} from './secret-scope.js';
export { MAX_SECRET_VALUE_BYTES, validateSecretValue } from './secret-value.js';
