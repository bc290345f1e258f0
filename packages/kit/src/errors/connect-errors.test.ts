import { Code, ConnectError } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { failedPrecondition, internalError, invalidArgument, notFound, permissionDenied, resourceExhausted, unavailable } from './connect-errors.js';

describe('ConnectError helpers', () => {
  it('invalidArgument takes one problem or a list, joined', () => {
    expect(invalidArgument('name: required').rawMessage).toBe('name: required');
    const listed = invalidArgument(['name: required', 'replicas: must be at most 100']);
    expect(listed.code).toBe(Code.InvalidArgument);
    expect(listed.rawMessage).toBe('name: required; replicas: must be at most 100');
  });

  it.each([
    [notFound, Code.NotFound],
    [failedPrecondition, Code.FailedPrecondition],
    [unavailable, Code.Unavailable],
    [resourceExhausted, Code.ResourceExhausted],
    [permissionDenied, Code.PermissionDenied],
    [internalError, Code.Internal],
  ])('%o answers its code with the message as given', (helper, code) => {
    const err = helper('what went wrong');
    expect(err).toBeInstanceOf(ConnectError);
    expect(err.code).toBe(code);
    expect(err.rawMessage).toBe('what went wrong');
  });
});
