const levelColors: Record<string, string> = {
  trace: '\x1b[90m',
  debug: '\x1b[90m',
  info: '\x1b[32m',
  warn: '\x1b[33m',
  error: '\x1b[31m',
  fatal: '\x1b[35m',
};
const reset = '\x1b[0m';
const hidden = new Set(['level', 'time', 'pid', 'service', 'msg', 'hostname']);

/**
 * Renders one pino JSON line as "12:00:01 secrets  info  msg key=value" for a
 * terminal. Lines that are not JSON pass through unchanged.
 */
export function formatLogLine(process: string, line: string, color: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `${process.padEnd(10)} ${line}`;
  }
  const time = typeof record.time === 'string' ? record.time.slice(11, 19) : '';
  const level = String(record.level ?? 'info');
  const fields = Object.entries(record)
    .filter(([key]) => !hidden.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  const levelText = color ? `${levelColors[level] ?? ''}${level.padEnd(5)}${reset}` : level.padEnd(5);
  return `${time} ${process.padEnd(10)} ${levelText} ${String(record.msg ?? '')}${fields ? ` ${fields}` : ''}`;
}
