// VM drivers of the node agent: one interface (VmDriver), three implementations.

export { type VmDriverSettingValues, vmDriverConfigFrom, vmDriverSettings } from './driver-settings.js';
export { FirecrackerDriver, type FirecrackerDriverOptions } from './firecracker/firecracker-driver.js';
export { type HostCapabilities, probeHost } from './host-capabilities.js';
export { ProcessDriver, type ProcessDriverOptions } from './process/process-driver.js';
export { QemuDriver, type QemuDriverOptions } from './qemu/qemu-driver.js';
export { chooseDriver, createVmDriver, type DriverChoice, type QemuAccelChoice, type VmDriverChoice, type VmDriverConfig } from './select-driver.js';
export type {
  AdoptResult,
  GuestImage,
  StopOptions,
  VmDriver,
  VmDriverErrorReason,
  VmDriverKind,
  VmExit,
  VmHandle,
  VmNetwork,
  VmRecord,
  VmSpec,
} from './types.js';
export { VmDriverError } from './types.js';
export { parseVmRecord, vmRecordOf } from './vm-record.js';
export { DEFAULT_MIN_VM_MEMORY_MIB, vcpusForCpuMillis } from './vm-spec.js';
