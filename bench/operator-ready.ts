/**
 * Seconds until N FeatureGroups applied at once (one `kubectl apply` of N documents) are all Ready,
 * with the real operator against the real kube-apiserver and Postgres.
 *   node dist/bench/operator-ready.js [--groups 200] [--concurrency 4]
 *
 * No kubelet runs here, so the benchmark plays an instant one: it marks each consumer Deployment
 * available as soon as it exists. Pod start-up is therefore excluded; what is measured is the
 * operator (tables, grants, credentials, Deployments, status) and the API server round trips.
 * Deleting the groups afterwards (deletionPolicy Delete: tables dropped) is timed too.
 * Prints one JSON line of figures. BENCH_CPU_PROF_DIR=<dir> writes the operator's CPU profile there.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
} from '@kubernetes/client-node';
import { keepWatching } from '../core/kube-watch';
import pino from 'pino';
import { Pool } from 'pg';
import { scrape, sumOf } from './metrics';
import { projectRoot } from '../core/paths';

const GROUP = 'featurestore.dev';
const root = projectRoot();

interface Listed {
  items: {
    metadata: { name: string; generation: number };
    status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
  }[];
}

function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  const binary = execFileSync('bash', [join(root, 'test/servers/kube.sh'), 'kubectl-path'], {
    encoding: 'utf8',
  }).trim();
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary,
      ['--kubeconfig', kubeconfig, ...args],
      { maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

function manifest(namespace: string, index: number): string {
  return `apiVersion: ${GROUP}/v1alpha1
kind: FeatureGroup
metadata: { name: group-${index}, namespace: ${namespace} }
spec:
  entity: { name: user, keyField: entity_id }
  source: { topic: ${namespace}-events-${index}, eventTimeField: timestamp }
  features:
    - { name: last_action, type: string, from: action }
    - { name: last_page, type: string, from: page }
    - { name: last_amount, type: float64, from: amount }
  deletionPolicy: Delete
`;
}

/** Marks every consumer Deployment in the namespace available at once, as an instant kubelet would. */
async function instantKubelet(kube: KubeConfig, namespace: string): Promise<() => Promise<void>> {
  const apps = kube.makeApiClient(AppsV1Api);
  const informer = makeInformer(kube, `/apis/apps/v1/namespaces/${namespace}/deployments`, () =>
    apps.listNamespacedDeployment({ namespace }),
  );
  const markAvailable = (deployment: V1Deployment): void => {
    const replicas = deployment.spec?.replicas ?? 1;
    const generation = deployment.metadata?.generation ?? 0;
    if (deployment.status?.observedGeneration === generation && deployment.status.availableReplicas === replicas)
      return;
    const status = {
      observedGeneration: generation,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
    };
    void apps
      .patchNamespacedDeploymentStatus(
        { name: deployment.metadata!.name!, namespace, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      .catch((error: unknown) => console.error(`status patch failed: ${(error as Error).message}`));
  };
  informer.on('add', markAvailable);
  informer.on('update', markAvailable);
  await informer.start();
  return () => informer.stop();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { groups: { type: 'string', default: '200' }, concurrency: { type: 'string', default: '4' } },
  });
  const groups = Number(values.groups);
  const concurrency = Number(values.concurrency);
  const { KUBECONFIG, DATABASE_URL, KAFKA_BROKERS } = process.env;
  if (!KUBECONFIG || !DATABASE_URL || !KAFKA_BROKERS)
    throw new Error('KUBECONFIG, DATABASE_URL and KAFKA_BROKERS must be set (bench/run.sh sets them)');

  const kube = new KubeConfig();
  kube.loadFromFile(KUBECONFIG);
  const custom = kube.makeApiClient(CustomObjectsApi);
  const namespace = `bench-${randomBytes(3).toString('hex')}`;
  await kubectl(KUBECONFIG, [
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager',
    'featurestore-bench',
    '-f',
    join(root, 'crds/featuregroup.yaml'),
  ]);
  await kubectl(KUBECONFIG, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/featuregroups.featurestore.dev',
  ]);
  await kube.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  const stopKubelet = await instantKubelet(kube, namespace);

  const profile = process.env.BENCH_CPU_PROF_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`]
    : [];
  const operatorPort = 20000 + Math.floor(Math.random() * 20000);
  const operator = spawn(process.execPath, [...profile, join(root, 'dist/operator/main.js')], {
    env: {
      ...process.env,
      PORT: String(operatorPort),
      // Short, so that the benchmark can time a full resync of the Ready groups.
      RESYNC_SECONDS: '10',
      LOG_LEVEL: 'warn',
      WATCH_NAMESPACES: namespace,
      LEASE_NAMESPACE: namespace,
      POD_NAME: 'bench-operator',
      RECONCILE_CONCURRENCY: String(concurrency),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });

  type Item = Listed['items'][number];
  const isTrue = (item: Item, type: string) =>
    item.status?.observedGeneration === item.metadata.generation &&
    item.status.conditions?.some((c) => c.type === type && c.status === 'True') === true;
  // Watched, not polled: listing N groups every few ms would load the API server being measured.
  const watched = makeInformer(kube, `/apis/${GROUP}/v1alpha1/namespaces/${namespace}/featuregroups`, () =>
    custom.listNamespacedCustomObject({ group: GROUP, version: 'v1alpha1', plural: 'featuregroups', namespace }),
  );
  const readyAt = new Map<string, number>();
  const storeReady = new Set<string>();
  let storeReadySeconds: number | undefined;
  let start = 0;
  let allReady: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (allReady = resolve));
  const observe = (object: unknown): void => {
    const item = object as Item;
    const now = (performance.now() - start) / 1000;
    if (isTrue(item, 'StoreReady') && !storeReady.has(item.metadata.name)) {
      storeReady.add(item.metadata.name);
      if (storeReady.size === groups) storeReadySeconds = now;
    }
    if (isTrue(item, 'Ready') && !readyAt.has(item.metadata.name)) {
      readyAt.set(item.metadata.name, now);
      if (readyAt.size === groups) allReady();
    }
  };
  watched.on('add', observe);
  watched.on('update', observe);
  // A watch the API server cuts is restarted; a slow LIST every 2 s catches anything missed meanwhile.
  let finished = false;
  // Logs to stderr: stdout carries the benchmark's one JSON line of figures (run.sh collects it).
  keepWatching(watched, 'featuregroups', pino({ name: 'bench', level: 'warn' }, pino.destination(2)), () => finished);
  await watched.start();
  const sweep = setInterval(() => {
    void custom
      .listNamespacedCustomObject({ group: GROUP, version: 'v1alpha1', plural: 'featuregroups', namespace })
      .then(
        (list) => (list as Listed).items.forEach(observe),
        () => undefined,
      );
  }, 2_000);

  const documents = Array.from({ length: groups }, (_, i) => manifest(namespace, i)).join('---\n');
  start = performance.now();
  await kubectl(KUBECONFIG, ['apply', '-f', '-'], documents);
  const appliedSeconds = (performance.now() - start) / 1000;
  const exited = new Promise<never>((_, reject) =>
    operator.once('exit', (code) => reject(new Error(`the operator exited (${code})`))),
  );
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`only ${readyAt.size}/${groups} groups Ready after 600 s`)), 600_000).unref(),
  );
  await Promise.race([done, exited, timeout]);
  const round = (x: number) => Math.round(x * 100) / 100;
  const allReadySeconds = Math.max(...readyAt.values());
  const sorted = [...readyAt.values()].sort((a, b) => a - b);

  // A resync of the Ready groups: every group reconciled again, with nothing changed. Counted from
  // the operator's metrics and from the utility statements Postgres ran.
  const metricsUrl = `http://127.0.0.1:${operatorPort}`;
  const pool = new Pool({ connectionString: DATABASE_URL, max: 1 });
  await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  const ddl = async () =>
    Number(
      (
        await pool.query<{ n: string | null }>(
          `SELECT sum(calls) AS n FROM pg_stat_statements WHERE query ~* '^\\s*(CREATE|ALTER|GRANT|REVOKE|DROP)\\s'`,
        )
      ).rows[0]!.n ?? 0,
    );
  const reconciled = async () => sumOf(await scrape(metricsUrl), 'featurestore_operator_reconciles_total');
  // Quiet first: the last status writes wake their groups once more.
  for (let last = -1, now = await reconciled(); now !== last;) {
    await new Promise((r) => setTimeout(r, 1_500));
    [last, now] = [now, await reconciled()];
  }
  const [before, ddlBefore] = [await scrape(metricsUrl), await ddl()];
  const resyncDeadline = Date.now() + 120_000;
  while ((await reconciled()) < sumOf(before, 'featurestore_operator_reconciles_total') + groups) {
    if (Date.now() > resyncDeadline) throw new Error('no full resync within 120 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  const after = await scrape(metricsUrl);
  const delta = (name: string) => sumOf(after, name) - sumOf(before, name);
  const resync = {
    resync_reconciles: delta('featurestore_operator_reconciles_total'),
    resync_reconcile_ms_mean: round(
      (delta('featurestore_operator_reconcile_seconds_sum') /
        Math.max(1, delta('featurestore_operator_reconcile_seconds_count'))) *
        1000,
    ),
    resync_store_applies: delta('featurestore_operator_store_applies_total'),
    resync_ddl_statements: (await ddl()) - ddlBefore,
  };
  await pool.end();

  let remaining = groups;
  let allDeleted: () => void = () => undefined;
  const deleted = new Promise<void>((resolve) => (allDeleted = resolve));
  const gone = new Set<string>();
  const markGone = (name: string): void => {
    if (gone.has(name)) return;
    gone.add(name);
    remaining -= 1;
    if (remaining === 0) allDeleted();
  };
  watched.on('delete', (object) => markGone((object as Item).metadata.name));
  clearInterval(sweep);
  const deletionSweep = setInterval(() => {
    void custom
      .listNamespacedCustomObject({ group: GROUP, version: 'v1alpha1', plural: 'featuregroups', namespace })
      .then(
        (list) => {
          const present = new Set((list as Listed).items.map((i) => i.metadata.name));
          for (let i = 0; i < groups; i++) if (!present.has(`group-${i}`)) markGone(`group-${i}`);
        },
        () => undefined,
      );
  }, 2_000);
  const deleteStart = performance.now();
  await kubectl(KUBECONFIG, ['delete', 'featuregroups', '--all', '-n', namespace, '--wait=false']);
  await Promise.race([deleted, exited, timeout]);
  const deletedSeconds = (performance.now() - deleteStart) / 1000;
  finished = true;
  clearInterval(deletionSweep);
  await watched.stop();

  operator.removeAllListeners('exit');
  operator.kill('SIGTERM');
  await new Promise((r) => operator.once('exit', r));
  await stopKubelet();
  await kube
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name: namespace })
    .catch(() => undefined);

  console.log(
    JSON.stringify({
      benchmark: 'operator-ready',
      command: `node dist/bench/operator-ready.js --groups ${groups} --concurrency ${concurrency}`,
      groups,
      reconcile_concurrency: concurrency,
      kubectl_apply_seconds: round(appliedSeconds),
      all_store_ready_seconds: round(storeReadySeconds ?? allReadySeconds),
      all_ready_seconds: round(allReadySeconds),
      group_ready_p50_seconds: round(sorted[Math.floor(sorted.length / 2)]!),
      groups_ready_per_second: round(groups / allReadySeconds),
      all_deleted_seconds: round(deletedSeconds),
      ...resync,
      note: 'Deployments marked available by the benchmark as soon as they exist: pod start-up excluded',
    }),
  );
}

main().catch((error: unknown) => {
  console.error(`operator-ready benchmark failed: ${(error as Error).message}`);
  process.exit(1);
});
