// `npm run build [name...]`: bundles every shipped process (or the named ones) into plain
// JavaScript, skipping those already up to date (--force rebuilds). `npm start` runs it first.
import { type DeployableName, deployables } from '@shellwego/build';
import { ensureBuilt } from '@shellwego/build/build';

const args = process.argv.slice(2);
const force = args.includes('--force');
const names = args.filter((a) => a !== '--force');
const unknown = names.filter((n) => !(n in deployables));
if (unknown.length > 0) {
  console.error(`nothing to build named ${unknown.join(', ')}; there are: ${Object.keys(deployables).join(', ')}`);
  process.exit(2);
}
const chosen = (names.length > 0 ? names : Object.keys(deployables)) as DeployableName[];
const results = await Promise.all(chosen.map(async (name) => ({ name, ...(await ensureBuilt(name, { force })) })));
for (const { name, outfile, rebuilt } of results) console.log(`${rebuilt ? 'built     ' : 'up to date'} ${name.padEnd(12)} ${outfile}`);
