// Async mechanisms the processes share: a push-fed stream, a serial work queue, a bounded output log.
export { type OutputChunk, OutputLog, type OutputLogOptions } from './output-log.js';
export { PushQueue, type PushQueueOptions } from './push-queue.js';
export { SerialQueue } from './serial-queue.js';
