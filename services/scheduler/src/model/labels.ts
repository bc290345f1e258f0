// Node labels and label selectors share one syntax, so a selector can always match some node.
const KEY = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
const MAX_LABELS = 64;

/** Problems with a label map, each naming `field` and the key; empty when it is fine. */
export function labelProblems(labels: Readonly<Record<string, string>>, field: string): string[] {
  const problems: string[] = [];
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) problems.push(`${field}: at most ${MAX_LABELS} labels, got ${entries.length}`);
  for (const [key, value] of entries) {
    if (!KEY.test(key)) {
      problems.push(`${field}[${JSON.stringify(key)}]: a label key is 1-63 letters, digits, '.', '_', '-' or '/', starting and ending with a letter or digit`);
    } else if (!VALUE.test(value)) {
      problems.push(
        `${field}[${JSON.stringify(key)}]: the value ${JSON.stringify(value)} is not a label value (at most 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit)`,
      );
    }
  }
  return problems;
}
