// The registry process with the rules that protect the platform: the OCI
// layer rules inside a real ext4 image, malicious and corrupt archives
// refused with nothing kept, bad input answered with the right codes while
// the service keeps serving, FetchRootfs only with the right grant, the
// client helper refusing a tampered stream, and garbage collection leaving
// an in-flight fetch alone.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, createClient } from '@connectrpc/connect';
import { createRootfsClient, fetchRootfsToFile, partialPathOf, RootfsVerificationError } from '@shellwego/clients/registry';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { Health, HealthCheckResponse_ServingStatus } from '@shellwego/contracts/grpc/health/v1/health_pb';
import { type FetchRootfsResponse, RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { type GrantAudienceName, type GrantSigningKey, generateGrantKeyPair, loadGrantSigningKey, signGrant } from '@shellwego/kit/grant';
import { CertificateAuthority, type Principal } from '@shellwego/kit/pki';
import { createMtlsClient, createMtlsTransport, expectedService, implement, serve, type TlsMaterial } from '@shellwego/kit/rpc';
import { busyboxLayer, busyboxMissing } from '@shellwego/testing/images/busybox';
import { ext4Cat, ext4Tree } from '@shellwego/testing/images/debugfs';
import { missingTools } from '@shellwego/testing/images/host-tools';
import { type FixtureImage, flipByte, ociArchive } from '@shellwego/testing/images/image-archive';
import { type LayerEntry, layerTar, manyFilesTar } from '@shellwego/testing/images/layer-tar';
import { TestPlatform } from '@shellwego/testing/platform';
import { callError, importBytes, type RegistryClient } from '@shellwego/testing/registry/registry-calls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const missing = missingTools(['mkfs.ext4', 'debugfs', 'dumpe2fs']) ?? busyboxMissing();
const MAX_ENTRIES = 500;
const MAX_IMPORT_BYTES = 8 * 1024 * 1024;

async function image(layers: LayerEntry[][], extra: Partial<FixtureImage> = {}): Promise<Buffer> {
  return (await ociArchive({ layers: await Promise.all(layers.map((l) => layerTar(l))), ...extra })).archive;
}

describe.skipIf(!!missing)(`registry service${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let platform: TestPlatform;
  let admin: RegistryClient;
  let ca: CertificateAuthority;
  let signer: GrantSigningKey;
  let work: string;
  let busybox: Buffer;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'registry-service-'));
    platform = await TestPlatform.start({
      services: ['registry'],
      env: {
        SHELLWEGO_REGISTRY_MAX_IMAGE_ENTRIES: String(MAX_ENTRIES),
        SHELLWEGO_REGISTRY_MAX_IMPORT_BYTES: String(MAX_IMPORT_BYTES),
        SHELLWEGO_REGISTRY_GC_GRACE_PERIOD: '0s',
      },
    });
    admin = createMtlsClient(RegistryService, { baseUrl: platform.url('registry'), server: expectedService('registry'), tls: platform.admin });
    ca = await CertificateAuthority.load(await readFile(platform.pki.caCert, 'utf8'), await readFile(platform.pki.caKey, 'utf8'));
    signer = loadGrantSigningKey(await readFile(platform.pki.grantSigningKey));
    busybox = await image([busyboxLayer()]);
  }, 90_000);

  afterAll(async () => {
    await platform?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const storeDir = () => join(platform.home, 'registry');

  /** The store holds no blob, no temp file, and no rootfs (finished or in progress). */
  async function expectStoreEmpty(): Promise<void> {
    expect((await client()).images).toEqual([]);
    expect(await readdir(join(storeDir(), 'blobs', 'sha256'))).toEqual([]);
    expect(await readdir(join(storeDir(), 'tmp'))).toEqual([]);
    expect(await readdir(join(storeDir(), 'rootfs'))).toEqual(['tmp']);
    expect(await readdir(join(storeDir(), 'rootfs', 'tmp'))).toEqual([]);
  }
  const client = () => admin.listImages({});

  async function tlsFor(principal: Principal): Promise<TlsMaterial> {
    const issued = await ca.issue({ principal, validityMs: 3_600_000 });
    return { caPem: ca.certPem, certPem: issued.certPem, keyPem: issued.keyPem };
  }

  function grant(nodeId: string, imageDigest: string, key: GrantSigningKey = signer, audience: GrantAudienceName = 'registry'): Grant {
    return signGrant({ audience, instanceId: `i-${nodeId}`, app: 'shop', nodeId, secretNames: [], imageDigest, ttlMs: 60_000 }, key);
  }

  it('applies whiteouts, an opaque directory, hard links and symlinks over three layers exactly as the OCI spec says', async () => {
    const archive = await image([
      [
        { type: 'dir', path: 'etc/' },
        { type: 'file', path: 'etc/a.conf', content: 'a-content' },
        { type: 'file', path: 'etc/b.conf', content: 'b-content' },
        { type: 'dir', path: 'opt/' },
        { type: 'dir', path: 'opt/old/', mode: 0o750 },
        { type: 'file', path: 'opt/old/x', content: 'x-content' },
        { type: 'file', path: 'opt/old/y', content: 'y-content' },
        { type: 'dir', path: 'bin/' },
        { type: 'file', path: 'bin/tool', content: '#!/bin/sh\necho tool', mode: 0o755, uid: 10, gid: 20 },
      ],
      [
        { type: 'whiteout', path: 'etc/b.conf' },
        { type: 'opaque', path: 'opt/old' },
        { type: 'file', path: 'opt/old/z', content: 'z-content', mode: 0o600 },
        { type: 'hardlink', path: 'bin/tool2', target: 'bin/tool' },
        { type: 'dir', path: 'lib/' },
        { type: 'symlink', path: 'lib/link', target: '../bin/tool' },
      ],
      [
        { type: 'whiteout', path: 'bin/tool' },
        { type: 'hardlink', path: 'bin/tool3', target: 'bin/tool2' },
        { type: 'file', path: 'etc/c.conf', content: 'c-content' },
        { type: 'symlink', path: 'etc/abs', target: '/etc/a.conf' },
      ],
    ]);
    const imported = await importBytes(admin, archive, 'layers/test:3');
    expect(imported.layers).toHaveLength(3);
    const path = join(work, 'layers.ext4');
    await fetchRootfsToFile(admin, { imageDigest: imported.digest, path });
    const tree = await ext4Tree(path);
    expect([...tree.keys()].sort()).toEqual(
      ['/bin', '/bin/tool2', '/bin/tool3', '/etc', '/etc/a.conf', '/etc/abs', '/etc/c.conf', '/lib', '/lib/link', '/opt', '/opt/old', '/opt/old/z'].sort(),
    );
    expect(tree.get('/bin/tool2')).toMatchObject({ type: 'file', mode: 0o755, uid: 10, gid: 20, links: 2 });
    expect(tree.get('/bin/tool3')?.ino).toBe(tree.get('/bin/tool2')?.ino);
    expect((await ext4Cat(path, '/bin/tool3')).toString()).toBe('#!/bin/sh\necho tool');
    expect(tree.get('/opt/old')).toMatchObject({ type: 'dir', mode: 0o750 });
    expect(tree.get('/opt/old/z')).toMatchObject({ type: 'file', mode: 0o600 });
    expect(tree.get('/lib/link')).toMatchObject({ type: 'symlink', target: '../bin/tool' });
    expect(tree.get('/etc/abs')).toMatchObject({ type: 'symlink', target: '/etc/a.conf' });
    for (const [file, content] of [
      ['/etc/a.conf', 'a-content'],
      ['/etc/c.conf', 'c-content'],
      ['/opt/old/z', 'z-content'],
    ]) {
      expect((await ext4Cat(path, file as string)).toString()).toBe(content);
    }
    await admin.deleteImage({ reference: imported.digest });
    await admin.garbageCollect({});
    await expectStoreEmpty();
  });

  it('rejects malicious layers and corrupt blobs with a clear error, keeping nothing', async () => {
    const cases: [string, Buffer, RegExp][] = [
      ['traversal', await image([[{ type: 'file', path: '../escape', content: 'x' }]]), /"\.\." \(traversal\)/],
      ['absolute path', await image([[{ type: 'file', path: '/etc/evil', content: 'x' }]]), /absolute path/],
      [
        'symlink escape',
        await image([
          [
            { type: 'symlink', path: 'out', target: '../../../../tmp' },
            { type: 'file', path: 'out/evil', content: 'x' },
          ],
        ]),
        /through symlink \/out/,
      ],
      ['tar bomb', (await ociArchive({ layers: [await manyFilesTar(MAX_ENTRIES + 100)] })).archive, /more than 500 entries \(tar bomb guard\)/],
      [
        'flipped byte in a layer',
        (
          await ociArchive(
            { layers: [await layerTar(busyboxLayer())] },
            { mutate: (name, bytes) => (name.startsWith('blobs/') && bytes.length > 100_000 ? flipByte(bytes) : bytes) },
          )
        ).archive,
        /digest mismatch/,
      ],
    ];
    for (const [what, archive, message] of cases) {
      const err = await callError(importBytes(admin, archive, 'evil/image:1'));
      expect(err.code, what).toBe(Code.InvalidArgument);
      expect(err.rawMessage, what).toMatch(message);
      await expectStoreEmpty();
    }
    expect(existsSync('/tmp/evil')).toBe(false);
  });

  it('answers bad input with the right codes and keeps serving', async () => {
    const garbage = await callError(importBytes(admin, randomBytes(200_000)));
    expect(garbage.code).toBe(Code.InvalidArgument);
    expect(garbage.rawMessage).toContain('not a usable image');

    const big = (
      await ociArchive({ layers: [await layerTar([{ type: 'file', path: 'big.bin', content: randomBytes(MAX_IMPORT_BYTES + 1024) }])], compression: 'none' })
    ).archive;
    const oversize = await callError(importBytes(admin, big));
    expect(oversize.code).toBe(Code.ResourceExhausted);
    expect(oversize.rawMessage).toContain('SHELLWEGO_REGISTRY_MAX_IMPORT_BYTES');

    async function* noHeader() {
      yield { part: { case: 'chunk' as const, value: busybox.subarray(0, 1024) } };
    }
    expect((await callError(admin.importImage(noHeader()))).code).toBe(Code.InvalidArgument);
    expect((await callError(importBytes(admin, busybox, 'Not A Name'))).code).toBe(Code.InvalidArgument);
    await expectStoreEmpty();

    expect((await callError(admin.resolveImage({ reference: 'nope:1' }))).code).toBe(Code.NotFound);
    expect((await callError(admin.resolveImage({ reference: `sha256:${'0'.repeat(64)}` }))).code).toBe(Code.NotFound);
    expect((await callError(admin.resolveImage({ reference: 'UPPER/case' }))).code).toBe(Code.InvalidArgument);
    expect((await callError(admin.deleteImage({ reference: 'nope:1' }))).code).toBe(Code.NotFound);
    expect((await callError(drain(admin.fetchRootfs({ imageDigest: `sha256:${'0'.repeat(64)}` })))).code).toBe(Code.NotFound);
    expect((await callError(drain(admin.fetchRootfs({ imageDigest: 'sha256:../../etc' })))).code).toBe(Code.InvalidArgument);

    const ok = await importBytes(admin, busybox, 'busybox:ok');
    expect((await admin.resolveImage({ reference: 'busybox:ok' })).image?.digest).toBe(ok.digest);
    expect((await admin.resolveImage({ reference: `busybox@${ok.digest}` })).image?.tags).toEqual(['busybox:ok']);
    const pastEnd = await callError(drain(admin.fetchRootfs({ imageDigest: ok.digest, offset: 1n << 40n })));
    expect(pastEnd.code).toBe(Code.OutOfRange);
    const health = createClient(Health, createMtlsTransport({ baseUrl: platform.url('registry'), server: expectedService('registry'), tls: platform.admin }));
    expect((await health.check({ service: '' })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    await admin.deleteImage({ reference: ok.digest });
    await admin.garbageCollect({});
  });

  it('lets a node fetch a rootfs only with a grant issued to it for that digest, and resumes an interrupted download', async () => {
    const d = await importBytes(admin, busybox, 'grant/busybox:1');
    const other = await importBytes(admin, await image([[{ type: 'file', path: 'other', content: 'other\n' }]]), 'grant/other:1');
    const nodeA = createRootfsClient({ baseUrl: platform.url('registry'), tls: await tlsFor({ kind: 'node', id: 'node-a' }) });
    const scheduler = createMtlsClient(RegistryService, {
      baseUrl: platform.url('registry'),
      server: expectedService('registry'),
      tls: await tlsFor({ kind: 'service', name: 'scheduler' }),
    });

    const reference = join(work, 'admin.ext4');
    const byAdmin = await fetchRootfsToFile(admin, { imageDigest: d.digest, path: reference });
    const path = join(work, 'node.ext4');
    const byNode = await fetchRootfsToFile(nodeA, { imageDigest: d.digest, grant: grant('node-a', d.digest), path });
    expect(byNode.sha256).toBe(byAdmin.sha256);
    expect((await readFile(path)).equals(await readFile(reference))).toBe(true);
    // Recorded at import and answered by ResolveImage: the sha256 schedulers pin in grants.
    expect(d.rootfsSha256).toBe(byAdmin.sha256);
    expect((await scheduler.resolveImage({ reference: 'grant/busybox:1' })).image?.rootfsSha256).toBe(byAdmin.sha256);
    expect(other.rootfsSha256).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(other.rootfsSha256).not.toBe(d.rootfsSha256);
    // The client refuses bytes other than the pinned ones, though the registry's trailer matches them.
    const pinnedElsewhere = join(work, 'pinned-elsewhere.ext4');
    await expect(
      fetchRootfsToFile(nodeA, { imageDigest: d.digest, grant: grant('node-a', d.digest), path: pinnedElsewhere, sha256: other.rootfsSha256 }),
    ).rejects.toThrow(`but the grant pins ${other.rootfsSha256}`);
    expect(existsSync(pinnedElsewhere) || existsSync(partialPathOf(pinnedElsewhere))).toBe(false);

    const foreignKey = loadGrantSigningKey(generateGrantKeyPair().privateKeyPem);
    const denied: [string, Grant | undefined, RegExp][] = [
      ['no grant', undefined, /no grant was sent/],
      ["another digest's grant", grant('node-a', other.digest), /is for image/],
      ["another node's grant", grant('node-b', d.digest), /issued for node node-b/],
      ['a foreign signing key', grant('node-a', d.digest, foreignKey), /not trusted here/],
      ["the instance's secrets grant", grant('node-a', d.digest, signer, 'secrets'), /is for the secrets service, not registry/],
    ];
    for (const [what, shown, message] of denied) {
      const err = await callError(fetchRootfsToFile(nodeA, { imageDigest: d.digest, ...(shown ? { grant: shown } : {}), path }));
      expect(err.code, what).toBe(Code.PermissionDenied);
      expect(err.rawMessage, what).toMatch(message);
    }
    expect((await callError(drain(scheduler.fetchRootfs({ imageDigest: d.digest })))).code).toBe(Code.PermissionDenied);
    // An unknown digest with a valid grant for it: the grant passes, the image is missing.
    const unknown = `sha256:${'1'.repeat(64)}`;
    expect((await callError(drain(nodeA.fetchRootfs({ imageDigest: unknown, grant: grant('node-a', unknown) })))).code).toBe(Code.NotFound);

    // A download that broke off after 1 MiB + 5 bytes continues from there.
    const partial = partialPathOf(path);
    await writeFile(partial, (await readFile(reference)).subarray(0, 1024 * 1024 + 5));
    const resumed = await fetchRootfsToFile(nodeA, { imageDigest: d.digest, grant: grant('node-a', d.digest), path, resume: true });
    expect(resumed.transferredBytes).toBe(byAdmin.sizeBytes - (1024 * 1024 + 5));
    expect(resumed.sha256).toBe(byAdmin.sha256);
    expect(existsSync(partial)).toBe(false);
    await admin.deleteImage({ reference: d.digest });
    await admin.deleteImage({ reference: other.digest });
    await admin.garbageCollect({});
  });

  it('detects a tampered FetchRootfs stream in the client helper and keeps no file', async () => {
    const d = await importBytes(admin, busybox, 'tamper/busybox:1');
    // A stand-in for the registry that relays the real stream but alters it.
    let tamper: (m: FetchRootfsResponse, index: number) => FetchRootfsResponse | undefined = (m) => m;
    const issued = await ca.issue({ principal: { kind: 'service', name: 'registry' }, ipAddresses: ['127.0.0.1'], validityMs: 3_600_000 });
    const relay = await serve({
      name: 'tampering-registry-stand-in',
      host: '127.0.0.1',
      port: 0,
      tls: { caPem: ca.certPem, certPem: issued.certPem, keyPem: issued.keyPem },
      logger: pino({ level: 'silent' }),
      services: [
        implement(RegistryService, {
          async *fetchRootfs(request) {
            let i = 0;
            for await (const m of admin.fetchRootfs(request)) {
              const out = tamper(m, i++);
              if (out) yield out;
            }
          },
        }),
      ],
    });
    try {
      const viaRelay = createMtlsClient(RegistryService, { baseUrl: relay.url, server: expectedService('registry'), tls: platform.admin });
      const path = join(work, 'tampered.ext4');
      const flip = (m: FetchRootfsResponse, i: number) => {
        if (i === 2 && m.part.case === 'chunk') m.part.value.data = flipByte(Buffer.from(m.part.value.data));
        return m;
      };
      const cases: [string, typeof tamper, RegExp][] = [
        ['one flipped byte', flip, /its sha256 is sha256:[0-9a-f]{64}, but the registry says/],
        ['a missing chunk', (m, i) => (i === 2 ? undefined : m), /a chunk for offset \d+ arrived where \d+ was expected/],
        ['a cut-off stream', (m) => (m.part.case === 'digest' ? undefined : m), /ended without its info or digest/],
      ];
      for (const [what, change, message] of cases) {
        tamper = change;
        const err = await fetchRootfsToFile(viaRelay, { imageDigest: d.digest, path }).catch((e: unknown) => e);
        expect(err, what).toBeInstanceOf(RootfsVerificationError);
        expect((err as Error).message, what).toMatch(message);
        expect(existsSync(path), what).toBe(false);
        expect(existsSync(partialPathOf(path)), what).toBe(false);
      }
      tamper = (m) => m;
      expect((await fetchRootfsToFile(viaRelay, { imageDigest: d.digest, path })).sizeBytes).toBeGreaterThan(0);
    } finally {
      await relay.close();
    }
    await admin.deleteImage({ reference: d.digest });
    await admin.garbageCollect({});
  });

  it('never collects the rootfs of a fetch in flight', async () => {
    const d = await importBytes(admin, busybox, 'gc/busybox:1');
    const stream = admin.fetchRootfs({ imageDigest: d.digest })[Symbol.asyncIterator]();
    const info = await stream.next();
    expect(info.value?.part.case).toBe('info');
    const size = Number(info.value?.part.case === 'info' ? info.value.part.value.sizeBytes : 0n);
    await admin.deleteImage({ reference: d.digest });
    const during = await admin.garbageCollect({});
    expect(during.rootfsRemoved).toBe(0);
    expect(during.blobsRemoved).toBe(3);
    let received = 0;
    let sha = '';
    for (let r = await stream.next(); !r.done; r = await stream.next()) {
      if (r.value.part.case === 'chunk') received += r.value.part.value.data.length;
      if (r.value.part.case === 'digest') sha = r.value.part.value.sha256;
    }
    expect(received).toBe(size);
    expect(sha).toMatch(/^sha256:/);
    const after = await admin.garbageCollect({});
    expect(after.rootfsRemoved).toBe(1);
    await expectStoreEmpty();
  });
});

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) void _;
}
