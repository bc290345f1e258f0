// The registry service against real tools: images built by the test are
// imported as an OCI layout and as a docker-archive through the real
// registry process (partly with the CLI), and pulled from Debian's
// docker-registry (seeded by skopeo) with no auth, basic auth over TLS and
// bearer tokens over TLS. Every route must give the same root filesystem.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code } from '@connectrpc/connect';
import { fetchRootfsToFile } from '@shellwego/clients/registry';
import { type Image, RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { CertificateAuthority } from '@shellwego/kit/pki';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import { freePort } from '@shellwego/testing/free-port';
import { busyboxLayer, busyboxMissing } from '@shellwego/testing/images/busybox';
import { type Ext4Node, ext4Cat, ext4Tree } from '@shellwego/testing/images/debugfs';
import { missingTools } from '@shellwego/testing/images/host-tools';
import { dockerArchive, type FixtureImage, flipByte, ociArchive } from '@shellwego/testing/images/image-archive';
import { layerTar } from '@shellwego/testing/images/layer-tar';
import { TestPlatform } from '@shellwego/testing/platform';
import { DistributionServer } from '@shellwego/testing/registry/distribution-server';
import { callError, cli, importBytes, pull, type RegistryClient } from '@shellwego/testing/registry/registry-calls';
import { TokenServer } from '@shellwego/testing/registry/token-server';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const missing =
  missingTools(['docker-registry', 'skopeo', 'htpasswd'], 'install the Debian packages in deploy/packages/registry-tests.txt') ??
  missingTools(['mkfs.ext4', 'debugfs', 'dumpe2fs']) ??
  busyboxMissing();

const USER = 'puller';
const PASSWORD = 'correct horse battery staple';

/** An inode without its inode number, which may differ between equal trees. */
function shape(nodes: Map<string, Ext4Node>): Record<string, Omit<Ext4Node, 'ino' | 'path'>> {
  return Object.fromEntries([...nodes].map(([path, { ino: _ino, path: _path, ...rest }]) => [path, rest]));
}

describe.skipIf(!!missing)(`registry interop with docker-registry and skopeo${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let work: string;
  let platform: TestPlatform;
  let client: RegistryClient;
  let caPem: string;
  let storage: string;
  let plain: DistributionServer;
  let basic: DistributionServer;
  let tokenRegistry: DistributionServer;
  let tokens: TokenServer;
  let busybox: FixtureImage;
  let ociFile: string;
  let dockerFile: string;
  let seeded: { manifestDigest: string };
  let twoLayer: { manifestDigest: string; layerDigests: string[] };
  let multi: { indexDigest: string; amd64: string; arm64: string };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'registry-interop-'));
    storage = join(work, 'storage');
    busybox = {
      layers: [await layerTar(busyboxLayer())],
      runtime: { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'echo hi'], Env: ['PATH=/bin'], WorkingDir: '/root', ExposedPorts: { '8080/tcp': {} } },
    };
    const oci = await ociArchive(busybox, { tag: 'busybox:1.0' });
    seeded = oci.images[0] as { manifestDigest: string };
    ociFile = join(work, 'busybox-oci.tar');
    dockerFile = join(work, 'busybox-docker.tar');
    await writeFile(ociFile, oci.archive);
    await writeFile(dockerFile, (await dockerArchive(busybox, { tag: 'busybox:docker' })).archive);

    // A second image with a big-ish lower layer, for the corruption and resume test.
    const noise = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < noise.length; i += 4) noise.writeUInt32LE((i * 2654435761) >>> 0, i);
    const two = await ociArchive({
      layers: [
        await layerTar([
          { type: 'dir', path: 'data/' },
          { type: 'file', path: 'data/noise.bin', content: noise },
        ]),
        await layerTar([{ type: 'file', path: 'data/top.txt', content: 'top layer\n' }]),
      ],
    });
    twoLayer = two.images[0] as { manifestDigest: string; layerDigests: string[] };
    const twoFile = join(work, 'two-oci.tar');
    await writeFile(twoFile, two.archive);

    // A multi-platform image: an index over an amd64 and an arm64 manifest.
    const multiArchive = await ociArchive([
      { layers: [await layerTar([{ type: 'file', path: 'arch', content: 'amd64' }])] },
      { layers: [await layerTar([{ type: 'file', path: 'arch', content: 'arm64' }])], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    multi = {
      indexDigest: multiArchive.indexDigest as string,
      amd64: multiArchive.images[0]?.manifestDigest as string,
      arm64: multiArchive.images[1]?.manifestDigest as string,
    };
    const multiFile = join(work, 'multi-oci.tar');
    await writeFile(multiFile, multiArchive.archive);

    const ca = await CertificateAuthority.create({ commonName: 'interop test CA' });
    caPem = ca.certPem;
    const leaf = await ca.issue({
      principal: { kind: 'service', name: 'registry' },
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validityMs: 3_600_000,
    });
    const certFile = join(work, 'tls.crt');
    const keyFile = join(work, 'tls.key');
    const caFile = join(work, 'ca.crt');
    await writeFile(certFile, leaf.certPem);
    await writeFile(keyFile, leaf.keyPem, { mode: 0o600 });
    await writeFile(caFile, ca.certPem);
    const htpasswd = join(work, 'htpasswd');
    await execa('htpasswd', ['-B', '-b', '-c', htpasswd, USER, PASSWORD]);

    plain = await DistributionServer.start({ storageDir: storage, workDir: work, auth: { kind: 'none' } });
    for (const [file, ref] of [
      [ociFile, 'test/busybox:1.0'],
      [twoFile, 'test/two:1.0'],
    ] as const) {
      await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci-archive:${file}`, `docker://${plain.host}/${ref}`]);
    }
    await execa('skopeo', ['copy', '--quiet', '--all', '--dest-tls-verify=false', `oci-archive:${multiFile}`, `docker://${plain.host}/test/multi:1.0`]);
    const tls = { certFile, keyFile, caPem };
    basic = await DistributionServer.start({ storageDir: storage, workDir: work, tls, auth: { kind: 'htpasswd', file: htpasswd } });
    tokens = await TokenServer.start({
      tls: { certPem: leaf.certPem, keyPem: leaf.keyPem },
      signer: { certPem: ca.certPem, keyPem: ca.keyPem },
      issuer: 'shellwego-test-issuer',
      service: 'shellwego-test-registry',
      username: USER,
      password: PASSWORD,
    });
    tokenRegistry = await DistributionServer.start({
      storageDir: storage,
      workDir: work,
      tls,
      auth: { kind: 'token', realm: tokens.realm, service: 'shellwego-test-registry', issuer: 'shellwego-test-issuer', rootCertBundle: caFile },
    });
    platform = await TestPlatform.start({ services: ['registry'], env: { SHELLWEGO_REGISTRY_GC_GRACE_PERIOD: '0s' } });
    client = createMtlsClient(RegistryService, { baseUrl: platform.url('registry'), server: expectedService('registry'), tls: platform.admin });
  }, 120_000);

  afterAll(async () => {
    await platform?.stop();
    await Promise.all([plain?.stop(), basic?.stop(), tokenRegistry?.stop(), tokens?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Writes the image's rootfs to a file with the client helper. */
  async function rootfsOf(image: Image, name: string): Promise<string> {
    const path = join(work, `${name}.ext4`);
    await fetchRootfsToFile(client, { imageDigest: image.digest, path });
    return path;
  }

  /** Deletes the image and collects garbage, so the next route starts from an empty store. */
  async function forget(image: Image): Promise<void> {
    const res = await client.deleteImage({ reference: image.digest });
    expect(res.imageRemoved).toBe(true);
    const gc = await client.garbageCollect({});
    expect(gc.blobsRemoved).toBeGreaterThan(0);
    expect((await client.listImages({})).images).toEqual([]);
  }

  /** Every blob was really downloaded (not found in the store) and completed. */
  function expectDownloaded(progress: { digest: string; doneBytes: bigint; totalBytes: bigint; cached: boolean }[], image: Image): void {
    for (const layer of image.layers) {
      const events = progress.filter((p) => p.digest === layer.digest);
      expect(events.length).toBeGreaterThanOrEqual(2);
      expect(events.every((e) => !e.cached)).toBe(true);
      expect(events.at(-1)?.doneBytes).toBe(layer.sizeBytes);
      expect(events.at(-1)?.totalBytes).toBe(layer.sizeBytes);
    }
  }

  it('gives the same root filesystem from an OCI layout, a docker-archive, and pulls with no auth, basic auth and bearer tokens', async () => {
    // OCI layout through the CLI.
    const imported = await cli(platform, ['--output', 'json', 'image', 'import', ociFile]);
    expect(imported.stderr).toBe('');
    expect(imported.exitCode).toBe(0);
    const ociImage = JSON.parse(imported.stdout) as {
      digest: string;
      tags: string[];
      config: { entrypoint: string[]; workingDir: string; exposedPorts: string[] };
    };
    expect(ociImage.digest).toBe(seeded.manifestDigest);
    expect(ociImage.tags).toEqual(['busybox:1.0']);
    expect(ociImage.config).toMatchObject({ entrypoint: ['/bin/sh'], workingDir: '/root', exposedPorts: ['8080/tcp'] });
    const ociRootfs = join(work, 'oci.ext4');
    const written = await cli(platform, ['image', 'rootfs', 'busybox:1.0', '--file', ociRootfs]);
    expect(written.exitCode, written.stderr).toBe(0);
    expect(written.stdout).toContain(ociRootfs);
    const ociImageProto = (await client.resolveImage({ reference: 'busybox:1.0' })).image as Image;
    await forget(ociImageProto);

    // docker-archive through the API: a synthesised manifest, so another digest, same content.
    const dockerImage = await importBytes(client, await readFile(dockerFile));
    expect(dockerImage.tags).toEqual(['busybox:docker']);
    expect(dockerImage.digest).not.toBe(seeded.manifestDigest);
    const dockerRootfs = await rootfsOf(dockerImage, 'docker');
    await forget(dockerImage);

    // No auth, plain HTTP on loopback.
    const anonymous = await pull(client, { reference: `${plain.host}/test/busybox:1.0`, insecureHttp: true });
    expect(anonymous.image.digest).toBe(seeded.manifestDigest);
    expect(anonymous.image.tags).toEqual(['test/busybox:1.0']);
    expectDownloaded(anonymous.progress, anonymous.image);
    const anonymousRootfs = await rootfsOf(anonymous.image, 'anonymous');
    await forget(anonymous.image);

    // Basic auth over TLS with our CA, through the CLI (password on stdin, plain progress lines).
    const refused = await callError(
      pull(client, { reference: `${basic.host}/test/busybox:1.0`, caPem, credentials: { username: USER, password: Buffer.from('wrong') } }),
    );
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.rawMessage).toContain(USER);
    const anonymousAtBasic = await callError(pull(client, { reference: `${basic.host}/test/busybox:1.0`, caPem }));
    expect(anonymousAtBasic.code).toBe(Code.Unauthenticated);
    const untrusted = await callError(pull(client, { reference: `${basic.host}/test/busybox:1.0` }));
    expect(untrusted.code).toBe(Code.Unavailable);
    expect(untrusted.rawMessage).toContain('--ca-file');
    const viaCli = await cli(
      platform,
      [
        '--output',
        'json',
        'image',
        'pull',
        `${basic.host}/test/busybox:1.0`,
        '--name',
        'basic/busybox:1.0',
        '--username',
        USER,
        '--password-stdin',
        '--ca-file',
        join(work, 'ca.crt'),
      ],
      `${PASSWORD}\n`,
    );
    expect(viaCli.exitCode, viaCli.stderr).toBe(0);
    const basicImage = JSON.parse(viaCli.stdout) as { digest: string; tags: string[] };
    expect(basicImage).toMatchObject({ digest: seeded.manifestDigest, tags: ['basic/busybox:1.0'] });
    expect(viaCli.stderr).toMatch(/: done$/m);
    expect(basic.lines.some((l) => l.includes('msg="authorized request"') && l.includes('/blobs/sha256:'))).toBe(true);
    const basicProto = (await client.resolveImage({ reference: 'basic/busybox:1.0' })).image as Image;
    const basicRootfs = await rootfsOf(basicProto, 'basic');
    await forget(basicProto);

    // Bearer tokens from the token server, registry over TLS.
    const beforeTokens = tokens.requests;
    const tokenPull = await pull(client, {
      reference: `${tokenRegistry.host}/test/busybox:1.0`,
      caPem,
      credentials: { username: USER, password: Buffer.from(PASSWORD) },
    });
    expect(tokenPull.image.digest).toBe(seeded.manifestDigest);
    expectDownloaded(tokenPull.progress, tokenPull.image);
    expect(tokens.requests).toBeGreaterThan(beforeTokens);
    const tokenRefused = await callError(
      pull(client, { reference: `${tokenRegistry.host}/test/busybox:1.0`, caPem, credentials: { username: USER, password: Buffer.from('nope') } }),
    );
    expect(tokenRefused.code).toBe(Code.Unauthenticated);
    const tokenRootfs = await rootfsOf(tokenPull.image, 'token');

    // Same manifest digest, reproducible builds: byte-identical images.
    const ociBytes = await readFile(ociRootfs);
    for (const other of [anonymousRootfs, basicRootfs, tokenRootfs]) expect((await readFile(other)).equals(ociBytes)).toBe(true);
    // The docker-archive route has another digest (so another UUID): compare the content with debugfs.
    const ociTree = await ext4Tree(ociRootfs);
    const dockerTree = await ext4Tree(dockerRootfs);
    expect(shape(dockerTree)).toEqual(shape(ociTree));
    expect(ociTree.get('/bin/sh')).toMatchObject({ type: 'symlink', target: 'busybox' });
    expect(ociTree.get('/etc/shadow')).toMatchObject({ mode: 0o640, gid: 42 });
    expect(ociTree.get('/tmp')).toMatchObject({ type: 'dir', mode: 0o1777 });
    expect(ociTree.get('/home/nobody/.profile')).toMatchObject({ uid: 65534, gid: 65534 });
    for (const path of ['/bin/busybox', '/etc/passwd', '/home/nobody/.profile']) {
      const a = await ext4Cat(ociRootfs, path);
      expect(a.length).toBeGreaterThan(0);
      expect(await ext4Cat(dockerRootfs, path)).toEqual(a);
    }
    expect((await ext4Cat(ociRootfs, '/bin/busybox')).equals(await readFile('/bin/busybox'))).toBe(true);

    // The remaining CLI commands on the pulled image.
    const listed = await cli(platform, ['--output', 'json', 'image', 'ls']);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ digest: seeded.manifestDigest, tags: ['test/busybox:1.0'] })]);
    const table = await cli(platform, ['image', 'ls']);
    expect(table.stdout).toMatch(/^NAME\s+DIGEST\s+PLATFORM\s+SIZE\s+CREATED$/m);
    expect(table.stdout).toContain('test/busybox:1.0');
    const inspected = await cli(platform, ['image', 'inspect', 'test/busybox:1.0']);
    expect(inspected.stdout).toContain(`digest:      ${seeded.manifestDigest}`);
    expect(inspected.stdout).toContain('entrypoint:  ["/bin/sh"]');
    const untag = await cli(platform, ['--output', 'json', 'image', 'rm', 'test/busybox:1.0']);
    expect(JSON.parse(untag.stdout)).toEqual({ removedTags: ['test/busybox:1.0'], imageRemoved: false });
    const gone = await cli(platform, ['image', 'inspect', 'test/busybox:1.0']);
    expect(gone.exitCode).toBe(1);
    expect(gone.stderr).toContain('not found');
    const removed = await cli(platform, ['image', 'rm', seeded.manifestDigest]);
    expect(removed.stdout).toContain(`removed image ${seeded.manifestDigest}`);
    const collected = await cli(platform, ['--output', 'json', 'image', 'gc']);
    expect(JSON.parse(collected.stdout)).toMatchObject({ blobsRemoved: 3, rootfsRemoved: 1 });
    // The password went to the registry and the token service, never into a log line.
    expect(platform.allLines().some((l) => l.includes(PASSWORD) || l.includes(Buffer.from(`${USER}:${PASSWORD}`).toString('base64')))).toBe(false);
  }, 120_000);

  it('rejects a corrupted blob on pull, and the next pull resumes without downloading verified blobs again', async () => {
    const [lower, upper] = twoLayer.layerDigests as [string, string];
    const blobFile = join(storage, 'docker/registry/v2/blobs/sha256', upper.slice(7, 9), upper.slice(7), 'data');
    const original = await readFile(blobFile);
    await writeFile(blobFile, flipByte(original));
    const reference = `${plain.host}/test/two:1.0`;
    try {
      const err = await callError(pull(client, { reference, insecureHttp: true }));
      expect(err.code).toBe(Code.DataLoss);
      expect(err.rawMessage).toContain(upper);
      expect(err.rawMessage).toContain('does not match its digest');
      const listed = await client.listImages({});
      expect(listed.images.map((i) => i.digest)).not.toContain(twoLayer.manifestDigest);
    } finally {
      await writeFile(blobFile, original);
    }
    expect(plain.blobGets(lower)).toBe(1);
    const resumed = await pull(client, { reference, insecureHttp: true });
    expect(resumed.image.digest).toBe(twoLayer.manifestDigest);
    expect(resumed.progress.filter((p) => p.digest === lower)).toEqual([expect.objectContaining({ cached: true })]);
    expect(resumed.progress.some((p) => p.digest === upper && !p.cached)).toBe(true);
    expect(plain.blobGets(lower)).toBe(1);
    expect(plain.blobGets(upper)).toBe(2);
  });

  it('picks the requested platform from a multi-platform index, and resolves the index digest to it', async () => {
    const arm = await pull(client, { reference: `${plain.host}/test/multi:1.0`, insecureHttp: true, platform: 'linux/arm64', name: 'multi:arm' });
    expect(arm.image).toMatchObject({ digest: multi.arm64, platform: 'linux/arm64/v8', tags: ['multi:arm'] });
    const byDefault = await pull(client, { reference: `${plain.host}/test/multi@${multi.indexDigest}`, insecureHttp: true });
    expect(byDefault.image).toMatchObject({ digest: multi.amd64, platform: 'linux/amd64', tags: [] });
    expect((await client.resolveImage({ reference: `multi@${multi.indexDigest}` })).image?.digest).toBe(multi.amd64);
    const path = join(work, 'arm.ext4');
    await fetchRootfsToFile(client, { imageDigest: multi.arm64, path });
    expect((await ext4Cat(path, '/arch')).toString()).toBe('arm64');
    const missing = await callError(pull(client, { reference: `${plain.host}/test/multi:1.0`, insecureHttp: true, platform: 'linux/s390x' }));
    expect(missing.code).toBe(Code.NotFound);
    expect(missing.rawMessage).toContain('available: linux/amd64, linux/arm64/v8');
  });

  it('answers unknown repositories, unknown tags and unreachable registries with the right codes', async () => {
    const before = (await client.listImages({})).images.map((i) => i.digest);
    const unknownTag = await callError(pull(client, { reference: `${plain.host}/test/busybox:nope`, insecureHttp: true }));
    expect(unknownTag.code).toBe(Code.NotFound);
    const unknownRepo = await callError(pull(client, { reference: `${plain.host}/no/such:1`, insecureHttp: true }));
    expect(unknownRepo.code).toBe(Code.NotFound);
    const closed = await callError(pull(client, { reference: `127.0.0.1:${await freePort()}/test/busybox:1.0`, insecureHttp: true }));
    expect(closed.code).toBe(Code.Unavailable);
    const notLoopback = await callError(pull(client, { reference: 'registry.example.com/test/busybox:1.0', insecureHttp: true }));
    expect(notLoopback.code).toBe(Code.InvalidArgument);
    expect((await client.listImages({})).images.map((i) => i.digest)).toEqual(before);
  });
});
