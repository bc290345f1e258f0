import type { MessageInitShape } from '@bufbuild/protobuf';
import { type Client, ConnectError } from '@connectrpc/connect';
import type { BlobProgress, Image, PullImageRequest, PullImageRequestSchema, RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { execa } from 'execa';
import type { TestPlatform } from '../platform.js';
import { cliEntry } from '../repo.js';

export type RegistryClient = Client<typeof RegistryService>;

const CHUNK = 1024 * 1024;

/** ImportImage with the archive sent in 1 MiB chunks. */
export async function importBytes(client: RegistryClient, archive: Uint8Array, name = ''): Promise<Image> {
  async function* requests() {
    yield { part: { case: 'header' as const, value: { name, format: 0, platform: '' } } };
    for (let i = 0; i < archive.length; i += CHUNK) yield { part: { case: 'chunk' as const, value: archive.subarray(i, i + CHUNK) } };
  }
  const { image } = await client.importImage(requests());
  if (!image) throw new Error('ImportImage answered without an image');
  return image;
}

/** PullImage to its end: every progress message and the image. */
export async function pull(
  client: RegistryClient,
  request: MessageInitShape<typeof PullImageRequestSchema>,
): Promise<{ image: Image; progress: BlobProgress[] }> {
  const progress: BlobProgress[] = [];
  let image: Image | undefined;
  for await (const m of client.pullImage(request as PullImageRequest)) {
    if (m.event.case === 'progress') progress.push(m.event.value);
    else if (m.event.case === 'image') image = m.event.value;
  }
  if (!image) throw new Error('PullImage ended without an image');
  return { image, progress };
}

/** The error a call failed with (fails the test when it succeeded). */
export async function callError(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error('the call succeeded but was expected to fail');
}

/** Runs the shellwego CLI against the platform as the admin; never throws on a non-zero exit. */
export async function cli(platform: TestPlatform, args: readonly string[], input?: string) {
  return execa(
    process.execPath,
    [
      cliEntry,
      '--registry',
      platform.url('registry'),
      '--ca',
      platform.pki.caCert,
      '--cert',
      platform.pki.admin.cert,
      '--key',
      platform.pki.admin.key,
      ...args,
    ],
    { reject: false, ...(input !== undefined ? { input } : { stdin: 'ignore' }), env: { SHELLWEGO_HOME: platform.home } },
  );
}
