import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';

/** A logger whose lines are kept in memory, so tests can search them. */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l.length > 0),
      );
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}
