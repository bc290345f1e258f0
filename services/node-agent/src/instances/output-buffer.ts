// A workload's recent output: the kit's byte-bounded output log (never written to disk: a workload may print anything).
export { type OutputChunk, OutputLog as OutputBuffer } from '@shellwego/kit/async';
