import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { toJson } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import { createRootfsClient, fetchRootfsToFile } from '@shellwego/clients/registry';
import { ArchiveFormat, type Image, ImageSchema, RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import type { Command } from 'commander';
import { CliError, type GlobalOptions, loadTls } from '../global-options.js';
import { ownedCopy, readAllStdin, readHiddenLine, stdinIsTerminal } from '../hidden-input.js';
import { printTable, printValue } from '../output.js';

const CHUNK_BYTES = 1024 * 1024;
/** Registry tokens (JWTs, cloud access tokens) fit comfortably. */
const MAX_PASSWORD_BYTES = 64 * 1024;

export function imageCommands(image: Command): void {
  image
    .command('import')
    .description('import an OCI image layout tar (oci-archive) or a `docker save` tar')
    .argument('<file>', 'the archive')
    .option('--name <name:tag>', "tag to give the image (default: the archive's own tag)")
    .option('--format <format>', 'oci, docker or auto', 'auto')
    .option('--platform <os/arch>', 'platform to pick from a multi-platform image')
    .action(async (file: string, options: { name?: string; format: string; platform?: string }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const format = parseFormat(options.format);
      await stat(file).catch((error: NodeJS.ErrnoException) => {
        throw new CliError(`cannot read ${file} (${error.code ?? 'error'})`);
      });
      const client = await registryClient(globals);
      async function* requests() {
        yield { part: { case: 'header' as const, value: { name: options.name ?? '', format, platform: options.platform ?? '' } } };
        for await (const chunk of createReadStream(file, { highWaterMark: CHUNK_BYTES })) {
          yield { part: { case: 'chunk' as const, value: chunk as Buffer } };
        }
      }
      const { image: imported } = await client.importImage(requests());
      if (!imported) throw new CliError('the registry answered without an image');
      printValue(globals.output, toJson(ImageSchema, imported), `imported ${describeTags(imported)} ${imported.digest}`);
    });

  image
    .command('pull')
    .description('pull an image from an OCI distribution registry')
    .argument('<reference>', '[host[:port]/]repository[:tag|@digest]')
    .option('--name <name:tag>', "store it under this name (default: the reference's repository and tag)")
    .option('--username <user>', 'user for basic or token auth; the password is read from stdin')
    .option('--password-stdin', 'read the password from stdin (the default when --username is given)')
    .option('--ca-file <file>', "PEM CA certificate to trust for the remote registry, besides the system's")
    .option('--insecure-http', 'plain HTTP (only for registries on this machine)')
    .option('--platform <os/arch>', 'platform to pick from a multi-platform image')
    .action(async (reference: string, options: PullOptions, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (options.passwordStdin && !options.username) throw new CliError('--password-stdin needs --username');
      const caPem = options.caFile ? await readText(options.caFile, '--ca-file') : '';
      const password = options.username ? await readPassword() : undefined;
      const client = await registryClient(globals);
      const progress = new PullProgress(process.stderr);
      try {
        const stream = client.pullImage({
          reference,
          ...(options.username && password ? { credentials: { username: options.username, password } } : {}),
          caPem,
          insecureHttp: options.insecureHttp ?? false,
          platform: options.platform ?? '',
          name: options.name ?? '',
        });
        let pulled: Image | undefined;
        for await (const message of stream) {
          if (message.event.case === 'progress') progress.update(message.event.value);
          else if (message.event.case === 'image') pulled = message.event.value;
        }
        progress.finish();
        if (!pulled) throw new CliError('the registry ended the pull without an image');
        printValue(globals.output, toJson(ImageSchema, pulled), `pulled ${describeTags(pulled)} ${pulled.digest}`);
      } finally {
        progress.finish();
        password?.fill(0);
      }
    });

  image
    .command('ls')
    .description('list stored images, newest first')
    .action(async (_options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { images } = await (await registryClient(globals)).listImages({});
      printTable(
        globals.output,
        images.map((i) => toJson(ImageSchema, i)),
        ['NAME', 'DIGEST', 'PLATFORM', 'SIZE', 'CREATED'],
        images.map((i) => [describeTags(i), i.digest.slice(0, 19), i.platform, formatBytes(Number(i.sizeBytes)), createdOf(i)]),
      );
    });

  image
    .command('inspect')
    .description('show an image: digest, tags, runtime config, layers')
    .argument('<reference>', 'name[:tag], name@sha256:... or sha256:...')
    .action(async (reference: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { image: found } = await (await registryClient(globals)).resolveImage({ reference });
      if (!found) throw new CliError('the registry answered without an image');
      printValue(globals.output, toJson(ImageSchema, found), describeImage(found));
    });

  image
    .command('rootfs')
    .description('write the verified ext4 root filesystem of an image to a file')
    .argument('<reference>', 'name[:tag], name@sha256:... or sha256:...')
    .requiredOption('-f, --file <file>', 'where to write the ext4 image')
    .action(async (reference: string, options: { file: string }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const client = createRootfsClient({ baseUrl: globals.registry, tls: await loadTls(globals) });
      const { image: found } = await client.resolveImage({ reference });
      if (!found) throw new CliError('the registry answered without an image');
      const fetched = await fetchRootfsToFile(client, { imageDigest: found.digest, path: options.file });
      printValue(
        globals.output,
        { image: found.digest, path: fetched.path, sizeBytes: fetched.sizeBytes, sha256: fetched.sha256 },
        `wrote ${fetched.path} (${formatBytes(fetched.sizeBytes)}, ${fetched.sha256}) for ${found.digest}`,
      );
    });

  image
    .command('rm')
    .description('remove a tag (name:tag) or an image and all its tags (name@digest, sha256:...)')
    .argument('<reference>')
    .action(async (reference: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const res = await (await registryClient(globals)).deleteImage({ reference });
      const what = res.imageRemoved ? `removed image ${reference}` : `untagged ${reference}`;
      const tags = res.removedTags.length > 0 ? ` (tags: ${res.removedTags.join(', ')})` : '';
      printValue(
        globals.output,
        { removedTags: res.removedTags, imageRemoved: res.imageRemoved },
        `${what}${tags}; run \`shellwego image gc\` to free the space`,
      );
    });

  image
    .command('gc')
    .description('remove blobs and root filesystems no image references')
    .action(async (_options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const res = await (await registryClient(globals)).garbageCollect({});
      const json = { blobsRemoved: res.blobsRemoved, rootfsRemoved: res.rootfsRemoved, bytesFreed: Number(res.bytesFreed) };
      printValue(
        globals.output,
        json,
        `removed ${res.blobsRemoved} blobs and ${res.rootfsRemoved} root filesystems, freed ${formatBytes(Number(res.bytesFreed))}`,
      );
    });
}

interface PullOptions {
  name?: string;
  username?: string;
  passwordStdin?: boolean;
  caFile?: string;
  insecureHttp?: boolean;
  platform?: string;
}

async function registryClient(globals: GlobalOptions): Promise<Client<typeof RegistryService>> {
  return createMtlsClient(RegistryService, { baseUrl: globals.registry, server: expectedService('registry'), tls: await loadTls(globals) });
}

function parseFormat(value: string): ArchiveFormat {
  switch (value) {
    case 'auto':
      return ArchiveFormat.UNSPECIFIED;
    case 'oci':
      return ArchiveFormat.OCI;
    case 'docker':
      return ArchiveFormat.DOCKER;
    default:
      throw new CliError(`--format must be oci, docker or auto, got "${value}"`);
  }
}

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); check ${flag}`);
  }
}

/**
 * The password, as bytes (never a string), without its line ending: typed
 * without echo on a terminal, else read from stdin.
 */
async function readPassword(): Promise<Buffer> {
  const limits = { maxBytes: MAX_PASSWORD_BYTES, what: 'password' };
  const all = stdinIsTerminal() ? await readHiddenLine({ ...limits, prompt: 'Password: ' }) : await readAllStdin(limits);
  let length = all.length;
  while (length > 0 && (all[length - 1] === 0x0a || all[length - 1] === 0x0d)) length--;
  const password = ownedCopy([all], length);
  all.fill(0);
  if (password.length === 0) throw new CliError('no password on stdin; pipe it in, e.g. `cat token | shellwego image pull --username u --password-stdin REF`');
  return password;
}

interface BlobState {
  done: number;
  total: number;
  cached: boolean;
  /** Last quarter reported on a non-terminal. */
  reported: number;
}

/**
 * Pull progress on stderr: one bar redrawn in place on a terminal, plain
 * lines (start, every quarter, done) otherwise.
 */
class PullProgress {
  private readonly blobs = new Map<string, BlobState>();
  private drawn = false;
  private finished = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(p: { digest: string; doneBytes: bigint; totalBytes: bigint; cached: boolean }): void {
    const state = this.blobs.get(p.digest) ?? { done: 0, total: 0, cached: false, reported: -1 };
    state.done = Number(p.doneBytes);
    state.total = Number(p.totalBytes);
    state.cached = p.cached;
    this.blobs.set(p.digest, state);
    if (this.out.isTTY) {
      this.draw();
      return;
    }
    const quarter = state.total > 0 ? Math.floor((state.done / state.total) * 4) : 4;
    if (quarter === state.reported) return;
    state.reported = quarter;
    const short = p.digest.slice(7, 19);
    const status = state.cached ? 'already present' : state.done >= state.total ? 'done' : `${formatBytes(state.done)} / ${formatBytes(state.total)}`;
    this.out.write(`${short}: ${status}\n`);
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.drawn) this.out.write('\n');
  }

  private draw(): void {
    let done = 0;
    let total = 0;
    let complete = 0;
    for (const b of this.blobs.values()) {
      done += b.done;
      total += b.total;
      if (b.done >= b.total) complete++;
    }
    const width = 30;
    const filled = total > 0 ? Math.round((done / total) * width) : width;
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    this.out.write(`\r${bar} ${formatBytes(done)} / ${formatBytes(total)}  ${complete}/${this.blobs.size} blobs`);
    this.drawn = true;
  }
}

function describeTags(image: Image): string {
  return image.tags.length > 0 ? image.tags.join(', ') : '<untagged>';
}

function createdOf(image: Image): string {
  return image.createdAt ? new Date(Number(image.createdAt.seconds) * 1000).toISOString().replace('.000Z', 'Z') : '';
}

function describeImage(image: Image): string {
  const c = image.config;
  const lines = [
    `digest:      ${image.digest}`,
    `tags:        ${describeTags(image)}`,
    `platform:    ${image.platform}`,
    `size:        ${formatBytes(Number(image.sizeBytes))} (compressed layers)`,
    `stored:      ${createdOf(image)}`,
  ];
  if (c) {
    lines.push(
      `entrypoint:  ${JSON.stringify(c.entrypoint)}`,
      `cmd:         ${JSON.stringify(c.cmd)}`,
      `workdir:     ${c.workingDir || '/'}`,
      `user:        ${c.user || 'root'}`,
      `ports:       ${c.exposedPorts.join(', ') || '-'}`,
      `env:`,
      ...c.env.map((e) => `  ${e}`),
    );
  }
  lines.push('layers:', ...image.layers.map((l) => `  ${l.digest}  ${formatBytes(Number(l.sizeBytes))}  ${l.mediaType}`));
  return lines.join('\n');
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
