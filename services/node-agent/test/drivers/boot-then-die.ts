// Test helper process: plays a node agent that boots one VM with the process driver, prints the
// VM record (what the agent persists) as one JSON line, then dies by SIGKILL, like `kill -9`.
//   node --import tsx boot-then-die.ts <instance id> <work dir> <guest agent bundle>
import { pino } from 'pino';
import { ProcessDriver } from '../../src/drivers/process/process-driver.js';
import { vmRecordOf } from '../../src/drivers/vm-record.js';

const [instanceId, workDir, bundle] = process.argv.slice(2);
if (instanceId === undefined || workDir === undefined || bundle === undefined) {
  process.stderr.write('usage: boot-then-die.ts <instance id> <work dir> <guest agent bundle>\n');
  process.exit(2);
}
const driver = new ProcessDriver({ log: pino({ level: 'silent' }), guestAgentBundle: bundle, workloadGraceMs: 2_000 });
const vm = await driver.boot({ instanceId, vcpus: 1, memoryMib: 128, rootfsPath: '/nonexistent.ext4', workDir });
process.stdout.write(`${JSON.stringify(vmRecordOf(vm))}\n`, () => process.kill(process.pid, 'SIGKILL'));
