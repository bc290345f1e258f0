// The Python and C++ clients of packages/contracts/clients/, generated and built as their README
// says: buf generate with each client's template (Debian's protoc and gRPC plugins), then the
// Python client on Debian's grpcio, the C++ one compiled with g++ against Debian's grpc++.
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { contractsDir } from '@shellwego/contracts/checks';
import { execa } from 'execa';

const buf = createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');
const clientsDir = join(contractsDir, 'clients');
/** Debian's interpreter: python3-grpcio is installed for it only, not for a pyenv python3 earlier on PATH. */
const debianPython = '/usr/bin/python3';

/** What the clients need that this host lacks (Debian packages), empty when nothing. */
export function missingClientTools(): string[] {
  const needed: [string, string][] = [
    ['/usr/bin/protoc', 'protobuf-compiler'],
    ['/usr/bin/grpc_python_plugin', 'protobuf-compiler-grpc'],
    ['/usr/lib/python3/dist-packages/grpc', 'python3-grpcio'],
    ['/usr/bin/g++', 'g++'],
    ['/usr/include/grpcpp/grpcpp.h', 'libgrpc++-dev'],
    ['/usr/include/google/protobuf/util/json_util.h', 'libprotobuf-dev'],
  ];
  return needed.filter(([path]) => !existsSync(path)).map(([, pkg]) => pkg);
}

async function generate(language: 'python' | 'cpp', out: string): Promise<void> {
  await mkdir(out, { recursive: true });
  await execa(buf, ['generate', 'proto', '--path', 'proto/shellwego', '--template', join(clientsDir, language, 'buf.gen.yaml'), '-o', out], {
    cwd: contractsDir,
  });
}

/** Generates the Python stubs; returns the command that runs the client (stubs on PYTHONPATH). */
export async function preparePythonClient(workDir: string): Promise<(args: readonly string[]) => Promise<string>> {
  const stubs = join(workDir, 'python');
  await generate('python', stubs);
  return async (args) =>
    (await execa(debianPython, [join(clientsDir, 'python/shellwego_client.py'), ...args], { env: { PYTHONPATH: stubs }, timeout: 60_000 })).stdout;
}

/** Generates the C++ stubs and builds the client (two compilers at a time); returns the command that runs it. */
export async function buildCppClient(workDir: string): Promise<(args: readonly string[]) => Promise<string>> {
  const generated = join(workDir, 'cpp');
  await generate('cpp', generated);
  const sources = [...(await sourcesUnder(generated)), join(clientsDir, 'cpp/shellwego_client.cc')];
  const objects = join(workDir, 'obj');
  await mkdir(objects, { recursive: true });
  const cflags = (await execa('pkg-config', ['--cflags', 'grpc++', 'protobuf'])).stdout.split(/\s+/).filter(Boolean);
  const libs = (await execa('pkg-config', ['--libs', 'grpc++', 'protobuf'])).stdout.split(/\s+/).filter(Boolean);
  const compile = async (source: string): Promise<string> => {
    const object = join(objects, `${relative(workDir, source).replaceAll('/', '_').replaceAll('.', '_')}.o`);
    await execa('g++', ['-std=c++17', '-O0', `-I${generated}`, ...cflags, '-c', source, '-o', object]);
    return object;
  };
  const built: string[] = [];
  const queue = [...sources];
  await Promise.all(
    [0, 1].map(async () => {
      for (let source = queue.shift(); source !== undefined; source = queue.shift()) built.push(await compile(source));
    }),
  );
  const binary = join(workDir, 'shellwego_client');
  await execa('g++', ['-o', binary, ...built, ...libs]);
  return async (args) => (await execa(binary, [...args], { timeout: 60_000 })).stdout;
}

async function sourcesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.cc')).map((entry) => join(entry.parentPath, entry.name));
}
