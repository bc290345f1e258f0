import { create, type DescMethod, getOption, hasOption } from '@bufbuild/protobuf';
import { type Access, AccessSchema, access as accessOption, type Caller, PrincipalKind } from '@shellwego/contracts/common/v1/access_pb';
import type { Principal } from '../pki/identity.js';

/** Who is calling: a principal from a verified certificate, or nobody. */
export type CallerIdentity = Principal | { readonly kind: 'anonymous' };

/**
 * Every authenticated principal. Used for the standard gRPC services (health,
 * reflection), which carry no shellwego access option.
 */
export const anyAuthenticated: Access = create(AccessSchema, {
  allow: [{ kind: PrincipalKind.USER }, { kind: PrincipalKind.NODE }, { kind: PrincipalKind.SERVICE }],
});

const standardServices = new Set(['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection']);

/**
 * The access rule of a method: its `shellwego.common.v1.access` option, the
 * built-in rule for standard gRPC services, or, failing both, an empty rule
 * that admits nobody (fail closed).
 */
export function accessOf(method: DescMethod): Access {
  if (hasOption(method, accessOption)) return getOption(method, accessOption);
  if (standardServices.has(method.parent.typeName)) return anyAuthenticated;
  return create(AccessSchema, { allow: [] });
}

export function admitsAnonymous(access: Access): boolean {
  return access.allow.some((caller) => caller.kind === PrincipalKind.ANONYMOUS);
}

export function isAllowed(access: Access, identity: CallerIdentity): boolean {
  return access.allow.some((caller) => matches(caller, identity));
}

function matches(caller: Caller, identity: CallerIdentity): boolean {
  switch (caller.kind) {
    case PrincipalKind.ANONYMOUS:
      return true;
    case PrincipalKind.USER:
      return identity.kind === 'user' && (caller.role === '' || identity.roles.includes(caller.role));
    case PrincipalKind.NODE:
      return identity.kind === 'node';
    case PrincipalKind.SERVICE:
      return identity.kind === 'service' && (caller.service === '' || identity.name === caller.service);
    default:
      // VM_HOST is only admitted by the VM channel server, never here.
      return false;
  }
}

/** "users with role admin or the scheduler service", for error messages. */
export function describeAccess(access: Access): string {
  if (access.allow.length === 0) return 'nobody';
  return access.allow
    .map((caller) => {
      switch (caller.kind) {
        case PrincipalKind.USER:
          return caller.role ? `users with role ${caller.role}` : 'users';
        case PrincipalKind.NODE:
          return 'nodes';
        case PrincipalKind.SERVICE:
          return caller.service ? `the ${caller.service} service` : 'services';
        case PrincipalKind.ANONYMOUS:
          return 'anyone';
        case PrincipalKind.VM_HOST:
          return 'the node agent over the VM channel';
        default:
          return 'nobody';
      }
    })
    .join(' or ');
}

export function describeIdentity(identity: CallerIdentity): string {
  switch (identity.kind) {
    case 'anonymous':
      return 'an anonymous caller';
    case 'user':
      return `user ${identity.name}${identity.roles.length ? ` (roles: ${identity.roles.join(', ')})` : ' (no roles)'}`;
    case 'node':
      return `node ${identity.id}`;
    case 'service':
      return `the ${identity.name} service`;
  }
}
