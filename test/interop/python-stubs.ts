import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { contractsDir } from '@shellwego/contracts/checks';
import { execa } from 'execa';

const protoDir = join(contractsDir, 'proto');
const scriptsDir = join(import.meta.dirname, 'python');

/**
 * Debian's interpreter, by absolute path: python3-grpcio is installed for it
 * only, and a pyenv or venv `python3` earlier on PATH cannot import grpc.
 */
export const debianPython = '/usr/bin/python3';
const protoc = '/usr/bin/protoc';
const grpcPythonPlugin = '/usr/bin/grpc_python_plugin';

/** The Debian packages the Python client test needs that are not installed. */
export function missingPythonPackages(): string[] {
  const missing: string[] = [];
  if (!existsSync(protoc)) missing.push('protobuf-compiler');
  if (!existsSync(grpcPythonPlugin)) missing.push('protobuf-compiler-grpc');
  if (!pythonImports('grpc')) missing.push('python3-grpcio');
  if (!pythonImports('google.protobuf')) missing.push('python3-protobuf');
  return missing;
}

function pythonImports(module: string): boolean {
  try {
    execFileSync(debianPython, ['-c', `import ${module}`], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Generates Python messages and gRPC stubs for SecretsService (with its
 * shellwego.common.v1 imports) and grpc.health.v1 from proto/ with protoc and
 * the gRPC Python plugin. Returns the directory to put on PYTHONPATH.
 */
export async function generatePythonStubs(workDir: string): Promise<string> {
  const stubs = join(workDir, 'stubs');
  const wellKnownTypes = join(workDir, 'well-known-types.binpb');
  // A generated top-level `grpc/` package would shadow grpcio itself, so
  // health.proto is compiled as grpc_health/v1/health.proto, the module path
  // grpcio-health-checking uses; its proto package stays grpc.health.v1.
  const healthRoot = join(workDir, 'health-proto');
  await mkdir(join(healthRoot, 'grpc_health/v1'), { recursive: true });
  await copyFile(join(protoDir, 'grpc/health/v1/health.proto'), join(healthRoot, 'grpc_health/v1/health.proto'));
  await mkdir(stubs, { recursive: true });
  await execa(debianPython, [join(scriptsDir, 'well_known_types.py'), wellKnownTypes]);

  const common = (await readdir(join(protoDir, 'shellwego/common/v1'))).filter((name) => name.endsWith('.proto')).map((name) => `shellwego/common/v1/${name}`);
  await execa(protoc, [
    `-I${protoDir}`,
    `-I${healthRoot}`,
    `--descriptor_set_in=${wellKnownTypes}`,
    `--plugin=protoc-gen-grpc_python=${grpcPythonPlugin}`,
    `--python_out=${stubs}`,
    `--grpc_python_out=${stubs}`,
    'shellwego/secrets/v1/secrets.proto',
    ...common,
    'grpc_health/v1/health.proto',
  ]);
  return stubs;
}

/** Runs call_services.py against `target` with the given client certificate. */
export async function runPythonClient(options: { stubs: string; target: string; caCert: string; cert: string; key: string; service: string }): Promise<string> {
  const result = await execa(debianPython, [join(scriptsDir, 'call_services.py'), options.target, options.caCert, options.cert, options.key, options.service], {
    env: { PYTHONPATH: options.stubs },
    timeout: 30_000,
  });
  return result.stdout;
}
