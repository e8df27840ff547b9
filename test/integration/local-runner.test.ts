/**
 * The local runner (the kubelet stand-in of `make up` and these tests) against a real
 * kube-apiserver: a replica whose first port is taken still comes up. The port here is held the
 * way an unlucky machine holds it, by an outbound connection's ephemeral port, which no listener
 * can take (a runner handing out base + n failed to listen there on every restart, and the
 * Deployment never became available).
 */
import { AppsV1Api, CoreV1Api, type V1Deployment } from '@kubernetes/client-node';
import { kubeConfig } from '../support/kube';
import { uniqueName } from '../support/platform';
import { eventually, explainedBy, startService, type RunningService } from '../support/services';
import { portHeldByConnection, tryListen, type ConnectionHeldPort } from '../support/sockets';

/** Answers 200 on every path (the runner probes /readyz) on $PORT: a replica with no dependencies. */
const REPLICA_SCRIPT =
  "require('http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1')";

describe('local runner', () => {
  const namespace = uniqueName('runner');
  const selector = `featurestore.dev/test-runner=${namespace}`;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let runner: RunningService | undefined;
  let held: ConnectionHeldPort;

  beforeAll(async () => {
    const kube = kubeConfig();
    apps = kube.makeApiClient(AppsV1Api);
    core = kube.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    held = await portHeldByConnection();
  });

  afterAll(async () => {
    // The test API server runs no namespace controller: the Deployment goes by hand.
    await apps?.deleteNamespacedDeployment({ name: 'plain', namespace }).catch(() => undefined);
    await runner?.stop();
    await held?.release();
    await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('starts a replica whose first port is held by an outbound connection on another port', async () => {
    const { port: heldPort, connection: outbound } = held;
    // The test's own check that the port is taken for a listener.
    expect(await tryListen(heldPort)).toBe('EADDRINUSE');

    runner = await startService(
      'local-runner',
      { KUBECONFIG: process.env.KUBECONFIG!, RUNNER_SELECTOR: selector, RUNNER_BASE_PORT: String(heldPort) },
      `${namespace}-runner`,
    );
    await runner.waitReady();
    const labels = { 'featurestore.dev/test-runner': namespace, app: 'plain' };
    const deployment: V1Deployment = {
      metadata: { name: 'plain', namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { containers: [{ name: 'plain', image: 'unused', command: ['node', '-e', REPLICA_SCRIPT] }] },
        },
      },
    };
    await apps.createNamespacedDeployment({ namespace, body: deployment });
    const available = eventually(
      async () => {
        const read = await apps.readNamespacedDeployment({ name: 'plain', namespace });
        return read.status?.availableReplicas === 1 ? read : undefined;
      },
      'the Deployment available, its replica listening',
      60_000,
    );
    await explainedBy(available, { runner: runner! }, 10);
    const started = runner
      .logEntries<{ replica?: string; port?: number }>('replica started')
      .filter((entry) => entry.replica === `${namespace}/plain#0`);
    expect(started).toHaveLength(1);
    const port = started[0]!.port!;
    expect(port).toBeGreaterThan(heldPort);
    expect(await (await fetch(`http://127.0.0.1:${port}/readyz`)).text()).toBe('ok');
    // Still held by the connection: the replica went around it, it did not take it over.
    expect(outbound.localPort).toBe(heldPort);
    expect(outbound.destroyed).toBe(false);
  });
});
