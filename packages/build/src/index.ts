export { type BundleResult, type BundleSpec, bundle, upToDate } from './bundle.js';
export { commandOf, type Deployable, type DeployableName, deployables, ensureBuilt } from './deployables.js';
