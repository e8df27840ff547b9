import type { Pool } from 'pg';
import type { Registry } from 'prom-client';
import { topicRouting, type TopicRouting } from '../../core/events/routes';
import type { Logger } from '../../core/logger';
import type { RegisteredGroup } from '../../core/storage/registry';
import { RegistryView } from '../../core/storage/registry-view';
import type { Routes } from './app';
import type { IngestConfig } from './config';

/** The registered groups' topics plus INGEST_TOPICS, reloaded when the registry changes. */
export function registryRoutes(
  pool: Pool,
  config: IngestConfig,
  log: Logger,
  registry: Registry,
): Routes & { start(): void; stop(): void } {
  const build = (groups: readonly RegisteredGroup[]): TopicRouting => {
    const routing = topicRouting(
      groups.map((g) => g.group),
      config.INGEST_TOPICS,
      config.INGEST_KEY_FIELD,
    );
    for (const conflict of routing.conflicts) log.error({ conflict }, 'groups on one topic disagree on the entity key');
    log.info({ topics: [...routing.routes.keys()] }, 'topics accepted');
    return routing;
  };
  const view = new RegistryView<TopicRouting>(
    pool,
    log,
    build,
    topicRouting([], [], config.INGEST_KEY_FIELD),
    registry,
  );
  return {
    current: () => view.value,
    get loaded() {
      return view.loaded;
    },
    get ageMs() {
      return view.ageMs;
    },
    refresh: () => view.refresh(),
    start: () => view.start(config.REGISTRY_REFRESH_MS),
    stop: () => view.stop(),
  };
}

/** Without a registry: INGEST_TOPICS only, keyed by INGEST_KEY_FIELD. */
export function staticRoutes(config: IngestConfig): Routes {
  const routing = topicRouting([], config.INGEST_TOPICS, config.INGEST_KEY_FIELD);
  return { current: () => routing, loaded: true, ageMs: 0, refresh: () => Promise.resolve() };
}
