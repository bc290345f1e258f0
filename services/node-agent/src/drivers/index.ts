// VM drivers of the node agent: one interface (VmDriver), three implementations.
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
export { DEFAULT_MIN_VM_MEMORY_MIB, vcpusForCpuMillis } from './vm-spec.js';
export { parseVmRecord, vmRecordOf } from './vm-record.js';
export { chooseDriver, createVmDriver, type DriverChoice, type QemuAccelChoice, type VmDriverChoice, type VmDriverConfig } from './select-driver.js';
export { probeHost, type HostCapabilities } from './host-capabilities.js';
export { vmDriverConfigFrom, vmDriverSettings, type VmDriverSettingValues } from './driver-settings.js';
export { FirecrackerDriver, type FirecrackerDriverOptions } from './firecracker/firecracker-driver.js';
export { QemuDriver, type QemuDriverOptions } from './qemu/qemu-driver.js';
export { DEFAULT_GUEST_AGENT_BUNDLE, ProcessDriver, type ProcessDriverOptions } from './process/process-driver.js';
