import express from 'express';
import { createPool } from '../core/storage/pool';
import { Counter, Histogram } from 'prom-client';
import { mountOps } from '../core/http/ops';
import { createKafka, highWatermarks, replayStartOffsets } from '../core/kafka';
import { createLogger } from '../core/logger';
import { createRegistry } from '../core/metrics';
import { migrationsDir } from '../core/paths';
import { onShutdown } from '../core/shutdown';
import { migrate } from '../core/storage/migrate';
import { derivedWriterPassword } from '../core/storage/roles';
import { loadOperatorConfig, type OperatorConfig } from './config';
import { Controller } from './controller';
import { kubeClients } from './kube';
import { LeaderElector } from './leader';
import { leaseOwner } from './lease-owner';
import { WorkQueue } from './queue';
import { ProgressMonitor } from './progress';
import { EventRecorder } from './events';
import { FeatureGroupReconciler } from './reconcile';
import { listenExpress } from '../core/http/express-server';

/** The consumer's connection: the operator's database, as the group's writer role. */
function consumerDatabaseUrl(config: OperatorConfig) {
  return (role: string, password: string): string => {
    const url = new URL(config.DATABASE_URL);
    url.username = role;
    url.password = password;
    if (config.CONSUMER_DATABASE_HOST) url.host = config.CONSUMER_DATABASE_HOST;
    return url.toString();
  };
}

async function main(): Promise<void> {
  const config = loadOperatorConfig();
  const log = createLogger('operator', config.LOG_LEVEL);
  const pool = createPool(
    {
      connectionString: config.DATABASE_URL,
      max: config.RECONCILE_CONCURRENCY + 1,
      application_name: 'featurestore-operator',
    },
    log,
  );
  const applied = await migrate(pool, migrationsDir());
  if (applied.length) log.info({ applied }, 'platform migrations applied');

  const kube = kubeClients();
  const registry = createRegistry('operator');
  const reconciles = new Counter({
    name: 'featurestore_operator_reconciles_total',
    help: 'Reconciles by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'featurestore_operator_reconcile_seconds',
    help: 'Reconcile duration',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const storeApplies = new Counter({
    name: 'featurestore_operator_store_applies_total',
    help: 'Times a group store was applied (DDL, grants, role); a resync of unchanged groups adds none',
    registers: [registry],
  });
  const kafkaAdmin = createKafka(config.KAFKA_BROKERS, 'featurestore-operator', log).admin();
  let adminConnected: Promise<void> | undefined;
  const connectedAdmin = async () => {
    adminConnected ??= kafkaAdmin.connect().catch((error: unknown) => {
      adminConnected = undefined;
      throw error;
    });
    await adminConnected;
    return kafkaAdmin;
  };
  const replayOffsets = async (topic: string, from: 'earliest' | number) =>
    replayStartOffsets(await connectedAdmin(), topic, from);
  const watermarks = async (topic: string) => highWatermarks(await connectedAdmin(), topic);
  // The monitor wakes the queue, which runs the reconciler, which reads the monitor: bound below.
  let enqueue: (key: string) => void = () => undefined;
  const progress = new ProgressMonitor({
    pool,
    admin: connectedAdmin,
    stallAfterMs: config.STALL_AFTER_SECONDS * 1000,
    intervalMs: config.PROGRESS_INTERVAL_SECONDS * 1000,
    onChange: (key) => enqueue(key),
    log,
    registry,
  });
  const reconciler: FeatureGroupReconciler = new FeatureGroupReconciler({
    replayOffsets,
    highWatermarks: watermarks,
    kube,
    pool,
    consumer: {
      image: config.CONSUMER_IMAGE,
      imagePullPolicy: config.CONSUMER_IMAGE_PULL_POLICY,
      imagePullSecrets: config.CONSUMER_IMAGE_PULL_SECRETS,
      kafkaBrokers: config.KAFKA_BROKERS,
      logLevel: config.CONSUMER_LOG_LEVEL,
      databaseHost: config.CONSUMER_DATABASE_HOST ?? new URL(config.DATABASE_URL).host,
    },
    consumerDatabaseUrl: consumerDatabaseUrl(config),
    writerPassword: (group) => derivedWriterPassword(config.DATABASE_URL, group),
    progress: (key) => progress.get(key),
    cache: {
      group: (namespace, name) => controller.cache.group(namespace, name),
      deployment: (namespace, name) => controller.cache.deployment(namespace, name),
    },
    events: new EventRecorder(kube.core, log),
    onStoreApplied: () => storeApplies.inc(),
    log,
  });
  const queue: WorkQueue = new WorkQueue((key) => reconciler.reconcile(key), {
    concurrency: config.RECONCILE_CONCURRENCY,
    log,
    onResult: (_key, outcome, seconds) => {
      reconciles.inc({ outcome });
      duration.observe(seconds);
    },
  });
  enqueue = (key) => queue.add(key);
  const controller: Controller = new Controller(kube, queue, config.WATCH_NAMESPACES, config.RESYNC_SECONDS, log);

  let leading = !config.LEADER_ELECTION;
  const app = express();
  mountOps(app, registry, async () => (await pool.query('SELECT 1')).rowCount === 1);
  app.get('/leader', (_req, res) => {
    res.json({ identity: config.POD_NAME, leading });
  });
  const server = listenExpress(app, config.PORT, () =>
    log.info({ port: config.PORT }, 'operator health and metrics listening'),
  );

  const lead = async (): Promise<void> => {
    leading = true;
    log.info({ identity: config.POD_NAME }, 'leading: starting controllers');
    queue.start();
    await controller.start();
    progress.start();
  };
  let elector: LeaderElector | undefined;
  if (config.LEADER_ELECTION) {
    const owner = await leaseOwner(kube, config, log);
    elector = new LeaderElector(kube.coordination, {
      namespace: config.LEASE_NAMESPACE,
      name: config.LEASE_NAME,
      identity: config.POD_NAME,
      ...(owner ? { owner } : {}),
      log,
    });
    void elector.run({
      onStartedLeading: () =>
        void lead().catch((error: unknown) => {
          log.error({ err: error }, 'controllers failed to start');
          process.exit(1);
        }),
      onStoppedLeading: () => {
        // Never act on stale leadership: exit and let the Deployment restart us as a follower.
        log.error('lost leadership; exiting');
        process.exit(1);
      },
    });
  } else {
    await lead();
  }

  onShutdown(log, async () => {
    progress.stop();
    await controller.stop();
    await queue.stop();
    await elector?.stop();
    server.close();
    await kafkaAdmin.disconnect().catch(() => undefined);
    await pool.end();
  });
}

main().catch((error: unknown) => {
  console.error(`operator failed to start: ${(error as Error).message}`);
  process.exit(1);
});
