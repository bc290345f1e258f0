/** Longest path and name the rootfs accepts (Linux PATH_MAX, ext4 name limit). */
const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;

export type EntryPath = { ok: true; parts: string[] } | { ok: false; reason: string };

/**
 * Turns a tar entry name into path components relative to the root, or a
 * reason to refuse it. Only a leading `./` is stripped; absolute paths and
 * any `..` component are refused outright, even when they would resolve
 * inside the root, so no later code has to reason about them. Empty and `.`
 * components (`a//b`, `a/./b`) are dropped. No components means the root.
 */
export function parseEntryPath(name: string): EntryPath {
  if (name.includes('\0')) return { ok: false, reason: 'path contains a NUL byte' };
  if (name.startsWith('/')) return { ok: false, reason: 'absolute path' };
  if (Buffer.byteLength(name) > MAX_PATH_BYTES) return { ok: false, reason: `path longer than ${MAX_PATH_BYTES} bytes` };
  const rel = name.startsWith('./') ? name.slice(2) : name;
  const parts: string[] = [];
  for (const part of rel.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return { ok: false, reason: 'path contains ".." (traversal)' };
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) return { ok: false, reason: `a name is longer than ${MAX_NAME_BYTES} bytes` };
    parts.push(part);
  }
  return { ok: true, parts };
}

/**
 * Whether symlink `target`, stored at `linkParts` and read relative to its
 * directory, climbs above the root. Absolute targets are read against the
 * image root, as the guest will, so they never escape.
 */
export function symlinkEscapes(linkParts: readonly string[], target: string): boolean {
  if (target.startsWith('/')) return false;
  let depth = linkParts.length - 1;
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    depth += part === '..' ? -1 : 1;
    if (depth < 0) return true;
  }
  return false;
}
