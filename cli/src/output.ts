export type OutputFormat = 'text' | 'json';

/** Prints rows as an aligned table (text) or the given value as JSON. */
export function printTable(format: OutputFormat, json: unknown, header: readonly string[], rows: readonly (readonly string[])[]): void {
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

/** Prints one value as JSON, or a text rendering of it. */
export function printValue(format: OutputFormat, json: unknown, text: string): void {
  process.stdout.write(format === 'json' ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
}
