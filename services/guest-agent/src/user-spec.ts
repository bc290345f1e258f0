// Turns the image's `user` ("name", "uid", "uid:gid", "name:group") into numeric ids, reading
// the root filesystem's /etc/passwd and /etc/group (read-only).
import { readFile } from 'node:fs/promises';
import { resolveInRoot } from './path-in-root.js';
import { WorkloadError } from './workload-error.js';

export interface UserIds {
  readonly uid: number;
  readonly gid: number;
}

interface DbEntry {
  readonly name: string;
  readonly id: number;
  /** passwd only: the primary group. */
  readonly gid?: number;
}

const NUMERIC = /^\d+$/;
const MAX_ID = 0xfffffffe;

/** Resolves spec inside root; an empty spec is root (0:0). */
export async function resolveUser(root: string, spec: string): Promise<UserIds> {
  if (spec === '') {
    return { uid: 0, gid: 0 };
  }
  const [userPart = '', groupPart, ...extra] = spec.split(':');
  if (userPart === '' || extra.length > 0 || groupPart === '') {
    throw new WorkloadError('invalid-argument', `user "${spec}" is not of the form name, uid, uid:gid or name:group`);
  }
  let uid: number;
  let primaryGid: number | undefined;
  if (NUMERIC.test(userPart)) {
    uid = parseId(userPart, spec);
    primaryGid = (await readDb(root, '/etc/passwd', 'passwd')).find((entry) => entry.id === uid)?.gid;
  } else {
    const entry = (await readDb(root, '/etc/passwd', 'passwd')).find((candidate) => candidate.name === userPart);
    if (entry === undefined) {
      throw new WorkloadError('invalid-argument', `user "${userPart}" is not in the root filesystem's /etc/passwd`);
    }
    uid = entry.id;
    primaryGid = entry.gid;
  }
  if (groupPart === undefined) {
    // As container runtimes do: a uid without a passwd entry runs with group 0.
    return { uid, gid: primaryGid ?? 0 };
  }
  if (NUMERIC.test(groupPart)) {
    return { uid, gid: parseId(groupPart, spec) };
  }
  const group = (await readDb(root, '/etc/group', 'group')).find((candidate) => candidate.name === groupPart);
  if (group === undefined) {
    throw new WorkloadError('invalid-argument', `group "${groupPart}" is not in the root filesystem's /etc/group`);
  }
  return { uid, gid: group.id };
}

function parseId(text: string, spec: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id > MAX_ID) {
    throw new WorkloadError('invalid-argument', `user "${spec}": id ${text} is out of range`);
  }
  return id;
}

async function readDb(root: string, path: string, kind: 'passwd' | 'group'): Promise<DbEntry[]> {
  const resolved = await resolveInRoot(root, path);
  if (!resolved.exists) {
    return [];
  }
  const text = await readFile(resolved.hostPath, 'utf8');
  const entries: DbEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      continue;
    }
    const fields = line.split(':');
    const name = fields[0];
    const id = fields[2];
    if (name === undefined || id === undefined || !NUMERIC.test(id)) {
      continue;
    }
    const gid = kind === 'passwd' && fields[3] !== undefined && NUMERIC.test(fields[3]) ? Number(fields[3]) : undefined;
    entries.push(gid === undefined ? { name, id: Number(id) } : { name, id: Number(id), gid });
  }
  return entries;
}
