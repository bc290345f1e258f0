/** One challenge of a WWW-Authenticate header, e.g. `Bearer realm="...",service="...",scope="..."`. */
export interface AuthChallenge {
  /** Lowercased: "basic" or "bearer" (others are reported, not answered). */
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header into its challenges (RFC 7235: a scheme,
 * then comma-separated name=value or name="quoted value" parameters; a new
 * challenge starts at a token that is not followed by `=`).
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < header.length && /[\s,]/.test(header[i] ?? '')) i++;
  };
  const token = () => {
    const start = i;
    while (i < header.length && /[^\s,=]/.test(header[i] ?? '')) i++;
    return header.slice(start, i);
  };
  let current: AuthChallenge | undefined;
  while (i < header.length) {
    skipSpace();
    const name = token();
    if (name === '') break;
    let j = i;
    while (j < header.length && header[j] === ' ') j++;
    if (header[j] !== '=') {
      current = { scheme: name.toLowerCase(), params: {} };
      challenges.push(current);
      continue;
    }
    i = j + 1;
    while (i < header.length && header[i] === ' ') i++;
    let value = '';
    if (header[i] === '"') {
      i++;
      while (i < header.length && header[i] !== '"') {
        if (header[i] === '\\' && i + 1 < header.length) i++;
        value += header[i];
        i++;
      }
      i++;
    } else {
      const start = i;
      while (i < header.length && header[i] !== ',') i++;
      value = header.slice(start, i).trim();
    }
    if (current) current.params[name.toLowerCase()] = value;
  }
  return challenges;
}
