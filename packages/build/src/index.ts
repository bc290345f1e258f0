export { commandOf, type Deployable, type DeployableName, deployables, repoRoot } from './deployables.js';
