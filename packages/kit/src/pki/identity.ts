/** The principal a client certificate names in its `spiffe://shellwego/...` URI SAN. */
export type Principal =
  | { readonly kind: 'user'; readonly name: string; readonly roles: readonly string[] }
  | { readonly kind: 'node'; readonly id: string }
  | { readonly kind: 'service'; readonly name: ServiceName };

export const serviceNames = ['scheduler', 'secrets', 'registry'] as const;
export type ServiceName = (typeof serviceNames)[number];

export const trustDomain = 'shellwego';

// Ids become path segments of a URI and file names on nodes, so keep them to
// a conservative alphabet.
const segmentPattern = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function isValidIdentitySegment(value: string): boolean {
  return segmentPattern.test(value);
}

export function spiffeId(principal: Principal): string {
  switch (principal.kind) {
    case 'user':
      return `spiffe://${trustDomain}/user/${principal.name}`;
    case 'node':
      return `spiffe://${trustDomain}/node/${principal.id}`;
    case 'service':
      return `spiffe://${trustDomain}/service/${principal.name}`;
  }
}

/**
 * Parses a SPIFFE id of this trust domain. `roles` come from the
 * certificate's organizational units and only matter for users.
 * Returns undefined for anything that is not exactly one of the three shapes.
 */
export function parseSpiffeId(uri: string, roles: readonly string[] = []): Principal | undefined {
  const prefix = `spiffe://${trustDomain}/`;
  if (!uri.startsWith(prefix)) return undefined;
  const parts = uri.slice(prefix.length).split('/');
  if (parts.length !== 2) return undefined;
  const [kind, name] = parts as [string, string];
  if (!isValidIdentitySegment(name)) return undefined;
  switch (kind) {
    case 'user':
      return { kind: 'user', name, roles: [...roles] };
    case 'node':
      return { kind: 'node', id: name };
    case 'service':
      return (serviceNames as readonly string[]).includes(name) ? { kind: 'service', name: name as ServiceName } : undefined;
    default:
      return undefined;
  }
}
