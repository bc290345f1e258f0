import type { ScopeKindColumn } from './schema.js';
import type { SecretScopeRef } from './validation/index.js';

/** How a scope is keyed in the tables: kind plus app ('' for the workspace). */
export interface ScopeColumns {
  readonly scope_kind: ScopeKindColumn;
  readonly app: string;
}

export function scopeColumns(scope: SecretScopeRef): ScopeColumns {
  return scope.kind === 'app' ? { scope_kind: 'app', app: scope.app } : { scope_kind: 'workspace', app: '' };
}

export function scopeFromColumns(row: ScopeColumns): SecretScopeRef {
  return row.scope_kind === 'app' ? { kind: 'app', app: row.app } : { kind: 'workspace' };
}
