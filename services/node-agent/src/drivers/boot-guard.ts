// One boot at a time per instance id: a second boot of the same instance while the first is in
// flight fails instead of racing it for the work dir.
import { VmDriverError } from './types.js';

export class BootGuard {
  private readonly inFlight = new Set<string>();

  async run<T>(instanceId: string, boot: () => Promise<T>): Promise<T> {
    if (this.inFlight.has(instanceId)) {
      throw alreadyRunning(instanceId);
    }
    this.inFlight.add(instanceId);
    try {
      return await boot();
    } finally {
      this.inFlight.delete(instanceId);
    }
  }
}

export function alreadyRunning(instanceId: string): VmDriverError {
  return new VmDriverError('invalid-spec', `instance ${instanceId} already has a VM on this driver: stop it before booting it again`);
}
