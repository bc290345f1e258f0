// CPU and memory amounts as flags spell them, shared by `app deploy` and `node token create`.
import { CliError } from './global-options.js';

/** "0.5" cores or "500m" millicores. */
export function cpuMillis(text: string, flag: string): number {
  const milli = /^(\d+)m$/.exec(text);
  if (milli !== null) return Number(milli[1]);
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  throw new CliError(`${flag}: "${text}" is not a CPU amount like 0.5 or 500m`);
}

/** "256", "256Mi" or "2Gi". */
export function memoryMib(text: string, flag: string): number {
  const match = /^(\d+)(Mi|Gi)?$/.exec(text);
  if (match === null) throw new CliError(`${flag}: "${text}" is not a size like 256, 256Mi or 2Gi`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}
