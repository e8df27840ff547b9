/**
 * A stand-in for the kubelet on a machine with no cluster nodes (`make up`, tests): it watches the
 * consumer Deployments the operator manages and runs each replica's container command as a local
 * process with the container's env (Secret references resolved), restarts crashed replicas with
 * backoff, rolls them when the pod template changes, and writes the Deployment's status.
 */
import { createHash } from 'node:crypto';
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  type V1EnvVar,
} from '@kubernetes/client-node';
import { z } from 'zod';
import express from 'express';
import { baseEnv, loadConfig, port } from '../../core/config';
import { mountOps } from '../../core/http/ops';
import { loadKubeConfig } from '../../core/kube-config';
import { keepWatching } from '../../core/kube-watch';
import { createLogger, type Logger } from '../../core/logger';
import { createRegistry } from '../../core/metrics';
import { projectRoot } from '../../core/paths';
import { onShutdown } from '../../core/shutdown';
import { pickPort } from './ports';
import { Replica } from './replica';
import { listenExpress } from '../../core/http/express-server';

const env = baseEnv.extend({
  /** Health and metrics of the runner itself. */
  PORT: port(8089),
  /** Label selector of the Deployments to run. */
  RUNNER_SELECTOR: z.string().default('app.kubernetes.io/managed-by=featurestore-operator'),
  /**
   * Replicas listen (PORT) on the first free ports from here upward; unset, the OS picks them.
   * Either way a replica's port is picked anew at each start.
   */
  RUNNER_BASE_PORT: z.coerce.number().int().min(1024).max(65000).optional(),
});

interface Workload {
  key: string;
  templateHash: string;
  replicas: Replica[];
}

class LocalRunner {
  private readonly workloads = new Map<string, Workload>();
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private statusTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly kube: KubeConfig,
    private readonly selector: string,
    private readonly basePort: number | undefined,
    private readonly log: Logger,
  ) {
    this.apps = kube.makeApiClient(AppsV1Api);
    this.core = kube.makeApiClient(CoreV1Api);
  }

  async start(): Promise<void> {
    const informer = makeInformer(
      this.kube,
      '/apis/apps/v1/deployments',
      () => this.apps.listDeploymentForAllNamespaces({ labelSelector: this.selector }),
      this.selector,
    );
    informer.on('add', (d) => this.serially(keyOf(d), () => this.sync(d)));
    informer.on('update', (d) => this.serially(keyOf(d), () => this.sync(d)));
    informer.on('delete', (d) => this.serially(keyOf(d), () => this.remove(keyOf(d))));
    keepWatching(informer, 'deployments', this.log, () => this.stopped);
    await informer.start();
    this.statusTimer = setInterval(() => void this.reportAll(informer.list()), 1_000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.statusTimer);
    // Let syncs under way finish (they start nothing once stopped), then stop every replica.
    await Promise.all(this.pending.values());
    await Promise.all([...this.workloads.keys()].map((key) => this.remove(key)));
  }

  /**
   * One change at a time per Deployment: two overlapping syncs of one key (a roll while another
   * event arrives) would each start replicas, and the map would keep only one set, leaving the
   * other running unowned after the runner stopped.
   */
  private serially(key: string, work: () => Promise<void>): void {
    const next = (this.pending.get(key) ?? Promise.resolve())
      .then(work)
      .catch((error: unknown) => this.log.warn({ err: error, deployment: key }, 'sync failed'))
      .finally(() => {
        if (this.pending.get(key) === next) this.pending.delete(key);
      });
    this.pending.set(key, next);
  }

  private async sync(deployment: V1Deployment): Promise<void> {
    const key = keyOf(deployment);
    const template = deployment.spec?.template;
    const container = template?.spec?.containers?.[0];
    if (!container?.command) return;
    const templateHash = createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 12);
    const desired = deployment.spec?.replicas ?? 1;
    if (this.stopped) return;
    let workload = this.workloads.get(key);
    if (workload && workload.templateHash !== templateHash) {
      this.log.info({ deployment: key }, 'pod template changed: rolling replicas');
      await this.remove(key);
      workload = undefined;
    }
    if (!workload) {
      workload = { key, templateHash, replicas: [] };
      this.workloads.set(key, workload);
    }
    const namespace = deployment.metadata!.namespace!;
    const variables = await this.resolveEnv(namespace, container.env ?? []);
    if (this.stopped) return;
    while (workload.replicas.length < desired) {
      const [command, ...args] = container.command.map((part) =>
        part.startsWith('dist/') ? `${projectRoot()}/${part}` : part,
      );
      const replica = new Replica(
        `${key}#${workload.replicas.length}`,
        command!,
        args,
        variables,
        () => pickPort(this.basePort, this.portsInUse()),
        this.log,
      );
      await replica.start();
      workload.replicas.push(replica);
    }
    while (workload.replicas.length > desired) await workload.replicas.pop()!.stop();
  }

  private portsInUse(): Set<number> {
    const ports = new Set<number>();
    for (const { replicas } of this.workloads.values())
      for (const { port } of replicas) if (port !== undefined) ports.add(port);
    return ports;
  }

  private async resolveEnv(namespace: string, vars: V1EnvVar[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const v of vars) {
      if (v.value !== undefined) out[v.name] = v.value;
      const ref = v.valueFrom?.secretKeyRef;
      if (ref?.name) {
        const secret = await this.core.readNamespacedSecret({ name: ref.name, namespace });
        const data = secret.data?.[ref.key];
        if (data === undefined) throw new Error(`secret ${namespace}/${ref.name} has no key ${ref.key}`);
        out[v.name] = Buffer.from(data, 'base64').toString();
      }
    }
    return out;
  }

  private async remove(key: string): Promise<void> {
    const workload = this.workloads.get(key);
    this.workloads.delete(key);
    if (workload) await Promise.all(workload.replicas.map((r) => r.stop()));
  }

  /** Writes what a kubelet and the deployment controller would report. */
  private async reportAll(deployments: readonly V1Deployment[]): Promise<void> {
    for (const deployment of deployments) {
      const workload = this.workloads.get(keyOf(deployment));
      const ready = workload ? (await Promise.all(workload.replicas.map((r) => r.ready()))).filter(Boolean).length : 0;
      const replicas = workload?.replicas.length ?? 0;
      const status = {
        observedGeneration: deployment.metadata?.generation ?? 0,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: ready,
        availableReplicas: ready,
      };
      const current = deployment.status ?? {};
      if (Object.entries(status).every(([k, v]) => (current as Record<string, unknown>)[k] === v)) continue;
      await this.apps
        .patchNamespacedDeploymentStatus(
          { name: deployment.metadata!.name!, namespace: deployment.metadata!.namespace!, body: { status } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        )
        .catch((error: unknown) => this.log.warn({ err: error }, 'status update failed'));
    }
  }
}

const keyOf = (d: V1Deployment): string => `${d.metadata?.namespace}/${d.metadata?.name}`;

async function main(): Promise<void> {
  const config = loadConfig(env);
  const log = createLogger('local-runner', config.LOG_LEVEL);
  const kube = loadKubeConfig();
  const runner = new LocalRunner(kube, config.RUNNER_SELECTOR, config.RUNNER_BASE_PORT, log);
  await runner.start();
  log.info({ selector: config.RUNNER_SELECTOR }, 'running consumer Deployments as local processes');
  const app = express();
  mountOps(app, createRegistry('local-runner'), () => Promise.resolve(true));
  const server = listenExpress(app, config.PORT, () => log.info({ port: config.PORT }, 'runner health listening'));
  onShutdown(log, async () => {
    server.close();
    await runner.stop();
  });
}

main().catch((error: unknown) => {
  console.error(`local runner failed: ${(error as Error).message}`);
  process.exit(1);
});
