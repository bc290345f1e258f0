import { invalidArgument } from '@shellwego/kit/errors';
import { quoteInput } from './quote-input.js';

export const APP_NAME_MAX_LENGTH = 63;

/** A lowercase DNS label (RFC 1123), the same rule the scheduler applies to app names. */
const APP_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/** What is wrong with `app` as an app name, or undefined when it is fine. */
export function appNameProblem(app: string): string | undefined {
  if (app === '') return 'an app name is required';
  if (app.length > APP_NAME_MAX_LENGTH) {
    return `${quoteInput(app)} is ${app.length} characters; an app name is at most ${APP_NAME_MAX_LENGTH}`;
  }
  if (!APP_NAME_PATTERN.test(app)) {
    return `${quoteInput(app)} is not a valid app name; use lowercase letters, digits and -, starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Returns `app` or throws INVALID_ARGUMENT naming `field`. */
export function validateAppName(app: string, field = 'app'): string {
  const problem = appNameProblem(app);
  if (problem !== undefined) throw invalidArgument(`${field}: ${problem}`);
  return app;
}
