import { invalidArgument } from '@shellwego/kit/errors';
import { quoteInput } from './quote-input.js';

export const SECRET_NAME_MAX_LENGTH = 128;

/**
 * Names starting with this (any case) are refused: the platform passes its
 * own SHELLWEGO_* variables to workloads, and a secret must never be able to
 * shadow or be confused with them.
 */
export const RESERVED_SECRET_NAME_PREFIX = 'SHELLWEGO_';

/**
 * Environment-variable style: what every shell and runtime accepts as a
 * variable name. Both cases are allowed, as POSIX tolerates lowercase names
 * (http_proxy); names are case-sensitive, so DB_URL and db_url differ.
 */
const SECRET_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** What is wrong with `name` as a secret name, or undefined when it is fine. */
export function secretNameProblem(name: string): string | undefined {
  if (name === '') return 'a secret name is required';
  if (name.length > SECRET_NAME_MAX_LENGTH) {
    return `${quoteInput(name)} is ${name.length} characters; a secret name is at most ${SECRET_NAME_MAX_LENGTH}`;
  }
  if (!SECRET_NAME_PATTERN.test(name)) {
    return `${quoteInput(name)} is not a valid secret name; use letters, digits and _ and do not start with a digit`;
  }
  if (name.toUpperCase().startsWith(RESERVED_SECRET_NAME_PREFIX)) {
    return `${quoteInput(name)} starts with ${RESERVED_SECRET_NAME_PREFIX}, which is reserved for variables the platform sets`;
  }
  return undefined;
}

/** Returns `name` or throws INVALID_ARGUMENT naming `field`. */
export function validateSecretName(name: string, field = 'name'): string {
  const problem = secretNameProblem(name);
  if (problem !== undefined) throw invalidArgument(`${field}: ${problem}`);
  return name;
}

/** Checks every name (e.g. a grant's secret_names) and reports all bad ones at once. */
export function validateSecretNames(names: readonly string[], field: string): readonly string[] {
  const problems = names.flatMap((name) => secretNameProblem(name) ?? []);
  if (problems.length > 0) throw invalidArgument(`${field}: ${problems.join('; ')}`);
  return names;
}
