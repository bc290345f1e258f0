// Where the node's subnet comes from: the scheduler gives each node its own (NodeNetwork, first on
// every session); the agent keeps it in its state dir, so a restart opens the network and
// re-adopts its VMs before (or without) reaching the scheduler. NETWORK_SUBNET, when an operator
// sets it, overrides both (see the README for what that gives up).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '@shellwego/kit/errors';
import { publicFileMode, writeFileAtomic } from '@shellwego/kit/pki';

const SUBNET_FILE = 'node-subnet.json';

interface StoredSubnet {
  readonly subnet: string;
}

/** The subnet the scheduler last gave this node, or undefined when it never did. */
export async function loadGivenSubnet(stateDir: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(join(stateDir, SUBNET_FILE), 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
  const stored = JSON.parse(text) as Partial<StoredSubnet>;
  if (typeof stored.subnet !== 'string' || stored.subnet === '')
    throw new Error(`${join(stateDir, SUBNET_FILE)}: no subnet in it; delete it to wait for the scheduler's`);
  return stored.subnet;
}

export async function saveGivenSubnet(stateDir: string, subnet: string): Promise<void> {
  const stored: StoredSubnet = { subnet };
  await writeFileAtomic(join(stateDir, SUBNET_FILE), `${JSON.stringify(stored)}\n`, publicFileMode);
}
