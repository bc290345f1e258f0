import { create } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  type App,
  type AppService,
  DeleteAppResponseSchema,
  DeployAppResponseSchema,
  GetAppResponseSchema,
  ListAppsResponseSchema,
  ListInstancesResponseSchema,
  RefreshAppSecretsResponseSchema,
  RollbackAppResponseSchema,
  ScaleAppResponseSchema,
  type WatchEventsRequest,
  type WatchEventsResponse,
  WatchEventsResponseSchema,
} from '@shellwego/contracts/scheduler/v1/apps_pb';
import { principalOf } from '@shellwego/kit/auth';
import { invalidArgument, mapHandlerErrors, notFound, unavailable } from '@shellwego/kit/errors';
import { appNameProblems, appSpecProblems, MAX_REPLICAS } from './app-spec.js';
import { listApps, listInstances, readApp, readVersions } from './read-model.js';
import { toConnectError } from './rpc-errors.js';
import { requireLeader, type SchedulerDeps } from './scheduler-deps.js';
import { watchEvents } from './watch-events.js';

export function appService(deps: SchedulerDeps): Partial<ServiceImpl<typeof AppService>> {
  const appOrNotFound = async (name: string): Promise<App> => {
    const app = await readApp(deps.db, name);
    if (app === undefined) throw notFound(`app ${name} not found`);
    return app;
  };
  const checkName = (name: string) => {
    const problems = appNameProblems(name);
    if (problems.length > 0) throw invalidArgument(problems);
  };

  const handlers: Partial<ServiceImpl<typeof AppService>> = {
    async deployApp(request, context) {
      const problems = [...appNameProblems(request.name), ...appSpecProblems(request.spec)];
      if (problems.length > 0 || request.spec === undefined) throw invalidArgument(problems);
      const spec = request.spec;
      const leader = await requireLeader(deps, 'deploy apps');
      const image = await deps.images.resolve(spec.image);
      const principal = principalOf(context);
      const createdBy = principal.kind === 'user' ? principal.name : principal.kind;
      await leader.deploy({ name: request.name, spec, image, createdBy });
      deps.logger.info({ app: request.name, image: spec.image, digest: image.digest, replicas: spec.replicas, by: createdBy }, 'app deployed');
      return create(DeployAppResponseSchema, { app: await appOrNotFound(request.name) });
    },

    async scaleApp(request) {
      checkName(request.name);
      if (request.replicas > MAX_REPLICAS) throw invalidArgument([`replicas: must be at most ${MAX_REPLICAS}, got ${request.replicas}`]);
      const leader = await requireLeader(deps, 'scale apps');
      await leader.scale(request.name, request.replicas);
      return create(ScaleAppResponseSchema, { app: await appOrNotFound(request.name) });
    },

    async deleteApp(request) {
      checkName(request.name);
      const leader = await requireLeader(deps, 'delete apps');
      const stopped = await leader.remove(request.name);
      deps.logger.info({ app: request.name, stopped }, 'app deleted');
      return create(DeleteAppResponseSchema, { instancesStopped: stopped });
    },

    async getApp(request) {
      checkName(request.name);
      const app = await appOrNotFound(request.name);
      const [versions, instances] = await Promise.all([
        readVersions(deps.db, request.name),
        listInstances(deps.db, { app: request.name, nodeId: '', includeTerminal: false }),
      ]);
      return create(GetAppResponseSchema, { app, versions, instances });
    },

    async listApps() {
      return create(ListAppsResponseSchema, { apps: await listApps(deps.db) });
    },

    async listInstances(request) {
      return create(ListInstancesResponseSchema, {
        instances: await listInstances(deps.db, { app: request.app, nodeId: request.nodeId, includeTerminal: request.includeTerminal }),
      });
    },

    async rollbackApp(request) {
      checkName(request.name);
      const leader = await requireLeader(deps, 'roll apps back');
      const version = await leader.rollback(request.name);
      deps.logger.info({ app: request.name, version }, 'app rolling back');
      return create(RollbackAppResponseSchema, { app: await appOrNotFound(request.name) });
    },

    async refreshAppSecrets(request) {
      checkName(request.name);
      const leader = await requireLeader(deps, 'refresh secrets');
      const refreshed = await leader.refreshSecrets(request.name);
      deps.logger.info({ app: request.name, instances: refreshed }, 'secrets refresh sent');
      return create(RefreshAppSecretsResponseSchema, { instancesRefreshed: refreshed });
    },

    async *watchEvents(request: WatchEventsRequest, context: HandlerContext): AsyncGenerator<WatchEventsResponse> {
      const signal = AbortSignal.any([context.signal, deps.shuttingDown]);
      let last = request.afterCursor;
      const filter = { app: request.app, nodeId: request.nodeId, instanceId: request.instanceId };
      for await (const event of watchEvents(deps.db, deps.feed, filter, request.afterCursor, request.follow, signal)) {
        last = event.cursor;
        yield create(WatchEventsResponseSchema, { event });
      }
      if (request.follow && deps.shuttingDown.aborted) {
        throw unavailable(`the scheduler is shutting down; watch again with after_cursor ${last} to resume`);
      }
    },
  };
  return mapHandlerErrors(handlers, toConnectError);
}
