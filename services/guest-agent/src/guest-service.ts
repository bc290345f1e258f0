// GuestService on the VM channel: request decoding and the supervisor, nothing else.
import type { ConnectRouter, ServiceImpl } from '@connectrpc/connect';
import { GuestService } from '@shellwego/contracts/guest/v1/guest_pb';
import { mapHandlerErrors } from '@shellwego/kit/errors';
import { SecretBytes } from '@shellwego/kit/secret-bytes';
import { guestFigures } from './guest-figures.js';
import { toConnectError } from './rpc-errors.js';
import type { WorkloadSupervisor } from './supervisor.js';

export function guestServiceRoutes(supervisor: WorkloadSupervisor): (router: ConnectRouter) => void {
  const handlers: ServiceImpl<typeof GuestService> = {
    async run(req) {
      const pid = await supervisor.run(
        {
          argv: [...req.argv],
          env: { ...req.env },
          workdir: req.workdir,
          user: req.user,
          healthCheck: req.healthCheck,
          rootfsDevice: req.rootfsDevice,
          network:
            req.network === undefined
              ? undefined
              : {
                  interface: req.network.interface,
                  addressCidr: req.network.addressCidr,
                  gateway: req.network.gateway,
                  dnsServers: [...req.network.dnsServers],
                  mtu: req.network.mtu,
                },
        },
        adoptSecrets(req.secretEnv),
      );
      return { pid };
    },
    async injectSecrets(req) {
      return { pid: await supervisor.injectSecrets(adoptSecrets(req.secretEnv)) };
    },
    async signal(req) {
      await supervisor.signal(req.signal);
      return {};
    },
    wait(_req, context) {
      return supervisor.follow(context.signal);
    },
    async health() {
      return { agentAlive: true, ...(await supervisor.health()), figures: await guestFigures() };
    },
  };
  // Domain errors become status codes here, at the boundary.
  return (router) => router.service(GuestService, mapHandlerErrors(handlers, toConnectError));
}

// Takes the request's own buffers (no copies), so wiping them zeroes the received bytes.
function adoptSecrets(secretEnv: { [name: string]: Uint8Array }): Map<string, SecretBytes> {
  return new Map(Object.entries(secretEnv).map(([name, value]) => [name, SecretBytes.adopt(value)]));
}
