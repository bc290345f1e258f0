import { ImageFormatError } from './errors.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export const DEFAULT_PLATFORM = 'linux/amd64';

const ARCH_ALIASES: Readonly<Record<string, string>> = { x86_64: 'amd64', aarch64: 'arm64', armhf: 'arm' };
// The variant an architecture implies when none is written (OCI image index spec).
const DEFAULT_VARIANT: Readonly<Record<string, string>> = { arm64: 'v8', amd64: 'v1' };

/** Parses `os/arch[/variant]`, e.g. "linux/amd64" or "linux/arm/v7". */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  const [os, architecture, variant] = parts;
  if (parts.length < 2 || parts.length > 3 || !os || !architecture || (parts.length === 3 && !variant)) {
    throw new ImageFormatError(`invalid platform ${JSON.stringify(text)}: expected os/architecture[/variant]`);
  }
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/**
 * How well `candidate` satisfies `wanted`: 0 no match, 1 os/arch match with
 * an unrequested variant, 2 exact (after normalising aliases and default
 * variants). Pick the highest score, first in index order on ties.
 */
export function platformScore(wanted: Platform, candidate: Platform): number {
  const arch = normArch(wanted.architecture);
  if (wanted.os !== candidate.os || arch !== normArch(candidate.architecture)) return 0;
  const want = normVariant(arch, wanted.variant);
  const have = normVariant(arch, candidate.variant);
  if (want === have) return 2;
  return wanted.variant === undefined ? 1 : 0;
}

function normArch(arch: string): string {
  return ARCH_ALIASES[arch] ?? arch;
}

function normVariant(arch: string, variant: string | undefined): string {
  return variant || DEFAULT_VARIANT[arch] || '';
}
