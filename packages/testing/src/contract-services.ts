// Every service in the contracts, read from the generated descriptors (so a test over "every RPC"
// covers one added later without being edited), and which process serves each.
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import type { GenFile } from '@bufbuild/protobuf/codegenv2';
import type { PlatformService } from './platform.js';
import { repoRoot } from './repo.js';

/** Which process serves each contract package; the guest API is served only on VM channels. */
const SERVED_BY: Readonly<Record<string, PlatformService | 'vm-channel'>> = {
  'shellwego.scheduler.v1': 'scheduler',
  'shellwego.secrets.v1': 'secrets',
  'shellwego.registry.v1': 'registry',
  'shellwego.agent.v1': 'node-agent',
  'shellwego.guest.v1': 'vm-channel',
};

export async function contractServices(): Promise<DescService[]> {
  const dir = join(repoRoot, 'packages/contracts/gen/shellwego');
  const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('_pb.ts'));
  const services: DescService[] = [];
  for (const file of files) {
    const module = (await import(`@shellwego/contracts/${relative(dir, join(dir, file)).replace(/\.ts$/, '')}`)) as Record<string, unknown>;
    for (const value of Object.values(module)) {
      if ((value as GenFile | undefined)?.kind === 'file') services.push(...(value as GenFile).services);
    }
  }
  return services;
}

/** The process serving `service`, or undefined for a contract package no process is known to serve (a test should fail on it). */
export function servingProcessOf(service: DescService): PlatformService | 'vm-channel' | undefined {
  return SERVED_BY[service.typeName.replace(/\.[^.]+$/, '')];
}
