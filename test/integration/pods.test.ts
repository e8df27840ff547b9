/**
 * The platform on real pods: `helm install` of the chart on the test node (test/servers/pods.sh),
 * the product image built with buildah and run by kubelet + containerd, against the node's own
 * Postgres and Kafka. The FeatureGroup of examples/ is applied with kubectl; the operator, from its
 * pod and with its ServiceAccount, creates the consumer Deployment. Then, on those pods: the
 * design's in-cluster REST by DNS name, and the faults a cluster brings: a consumer pod deleted
 * mid-stream, a consumer killed by the kernel over its memory limit, a rolling update of serving
 * under load, `helm upgrade` of the image tag, and `helm uninstall`.
 *
 * The oracle is the events themselves: for every entity, how many it sent and its action of the
 * newest event time, computed here from the generated events, never from the platform.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../support/services';
import {
  apply,
  clusterIp,
  inNode,
  kubectl,
  leftovers,
  machineBefore,
  nodeEnv,
  nodeScript,
  nothingLeft,
  outcome,
  podsScript,
  repoRoot,
  run,
  scriptPod,
} from '../support/node';

const NS = 'feature-store';
const RELEASE = 'feature-store';
const work = join(repoRoot, '.local', 'pods');
const figures: Record<string, unknown> = {};

/** A group that counts every entity's events: a lost or doubled event shows in its count. */
const countsGroup = {
  apiVersion: 'featurestore.dev/v1alpha1',
  kind: 'FeatureGroup',
  metadata: { name: 'activity-counts', namespace: 'default' },
  spec: {
    entity: { name: 'user', keyField: 'entity_id' },
    source: { topic: 'raw-events', eventTimeField: 'timestamp' },
    features: [
      { name: 'events_30d', type: 'int64', aggregate: { fn: 'count', window: '30d' } },
      { name: 'latest_action', type: 'string', from: 'action' },
    ],
    consumer: {
      replicas: 1,
      batchSize: 2000,
      resources: { requests: { memory: '128Mi' }, limits: { memory: '256Mi' } },
    },
    deletionPolicy: 'Retain',
  },
};

interface SentEvent {
  entity_id: string;
  action: string;
  timestamp: string;
}

/** Every event sent so far, per entity: the oracle. */
const sent = new Map<string, SentEvent[]>();
const ACTIONS = ['view', 'click', 'buy', 'share', 'like'];
let clock = Date.now() - 3_600_000;

/** Deterministic pseudo-random numbers (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** COUNT events over ENTITIES entities, distinct event times, written in shuffled order. */
function stream(name: string, count: number, entities: number, seed: number): string {
  const random = prng(seed);
  const events: SentEvent[] = [];
  for (let i = 0; i < count; i++) {
    const event = {
      entity_id: `${name}-${Math.floor(random() * entities)}`,
      action: ACTIONS[Math.floor(random() * ACTIONS.length)]!,
      timestamp: new Date((clock += 1)).toISOString(),
    };
    events.push(event);
    sent.set(event.entity_id, [...(sent.get(event.entity_id) ?? []), event]);
  }
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [events[i], events[j]] = [events[j]!, events[i]!];
  }
  const file = join(work, `${name}.ndjson`);
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return file;
}

interface Served {
  status: number;
  body: { features?: Record<string, unknown> };
}

/** Served against sent for the entities whose names start with PREFIX: lost, duplicated, wrong. */
async function compare(prefix: string) {
  const ids = [...sent.keys()].filter((id) => id.startsWith(`${prefix}-`));
  const idsFile = join(work, `${prefix}.ids`);
  writeFileSync(idsFile, ids.join('\n') + '\n');
  const served = await inNode<Record<string, Served>>(['read', servingUrl, idsFile]);
  let lost = 0;
  let duplicated = 0;
  let wrongLatest = 0;
  let missing = 0;
  for (const id of ids) {
    const events = sent.get(id)!;
    const newest = events.reduce((a, b) => (b.timestamp > a.timestamp ? b : a));
    const answer = served[id];
    if (answer?.status !== 200) {
      missing++;
      lost += events.length;
      continue;
    }
    const features = answer.body.features ?? {};
    const count = Number(features.events_30d ?? 0);
    lost += Math.max(0, events.length - count);
    duplicated += Math.max(0, count - events.length);
    if (features.latest_action !== newest.action || features.last_action !== newest.action) wrongLatest++;
  }
  return {
    entities: ids.length,
    events: ids.reduce((n, id) => n + sent.get(id)!.length, 0),
    missing,
    lost,
    duplicated,
    wrongLatest,
  };
}

/** Waits until every entity of PREFIX is served exactly; the comparison at the end either way. */
async function untilExact(prefix: string) {
  let last = await compare(prefix);
  const exact = (c: typeof last) => c.missing + c.lost + c.duplicated + c.wrongLatest === 0;
  try {
    await eventually(
      async () => ((last = await compare(prefix)), exact(last) ? true : undefined),
      `${prefix} served exactly`,
      180_000,
    );
  } catch {
    // The figures below say what is off.
  }
  return last;
}

let ingestUrl = '';
let servingUrl = '';
/** The Services' addresses, as clients in the node's namespace reach them (new after a reinstall). */
function locateServices() {
  ingestUrl = `http://${clusterIp(NS, `${RELEASE}-ingest`)}:8081`;
  servingUrl = `http://${clusterIp(NS, `${RELEASE}-serving`)}:8080`;
}

/** JSONPATH over the consumer pods of GROUP. */
const consumerPods = (group: string, jsonpath: string) =>
  kubectl('-n', 'default', 'get', 'pods', '-l', `featurestore.dev/group=${group}`, '-o', `jsonpath=${jsonpath}`);

const podOf = (group: string) => consumerPods(group, '{.items[*].metadata.name}').trim().split(/\s+/).filter(Boolean);

const readyConsumer = (group: string) =>
  eventually(
    async () => {
      const out = consumerPods(
        group,
        '{range .items[*]}{.metadata.name} {.metadata.deletionTimestamp} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
      );
      const pods = out.split('\n').filter(Boolean);
      const ready = pods.filter((l) => l.endsWith(' True') && l.split(' ').length === 3);
      return pods.length === 1 && ready.length === 1 ? ready[0]!.split(' ')[0] : undefined;
    },
    `one Ready consumer pod of ${group}`,
    180_000,
  );

/** POSTs FILE through the ingest Service while `during` runs once DURING_AFTER events are in. */
async function postWith(file: string, duringAfter: number, during: () => void) {
  let triggered: Promise<void> | undefined;
  const posted = await inNode<{ events: number; accepted: number; retries: number }>(
    ['post', ingestUrl, file, '500'],
    (line) => {
      const n = Number(/^posted (\d+)/.exec(line)?.[1] ?? 0);
      if (!triggered && n >= duringAfter) triggered = Promise.resolve().then(during);
    },
  );
  await triggered;
  return posted;
}

describe('the platform on real pods (helm install on the test node)', () => {
  const before = machineBefore();

  const suiteStarted = Date.now();

  beforeAll(() => {
    mkdirSync(work, { recursive: true });
    run(podsScript, 'down'); // a node an earlier run left holds its data: start from nothing
    const t0 = Date.now();
    run(podsScript, 'up');
    figures.platformUpSeconds = (Date.now() - t0) / 1000;
    console.log(`pods: node, image and helm install Ready in ${(figures.platformUpSeconds as number).toFixed(1)} s`);
    locateServices();
  });

  afterAll(() => {
    writeFileSync(join(work, 'figures.json'), JSON.stringify(figures, null, 2));
    figures.suiteSeconds = (Date.now() - suiteStarted) / 1000;
    console.log(`pods figures: ${JSON.stringify(figures)}`);
    console.log(`pods: suite ran ${(figures.suiteSeconds as number).toFixed(0)} s`);
    run(podsScript, 'down');
  });

  it('helm install: every component Ready from the image; kubectl apply of the example makes the operator, with its ServiceAccount, create the consumer Deployment, whose pod becomes Ready', async () => {
    const deployments = kubectl(
      '-n',
      NS,
      'get',
      'deployments',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.status.availableReplicas}/{.spec.replicas} {.spec.template.spec.containers[0].image}{"\\n"}{end}',
    );
    expect(deployments.trim().split('\n').sort()).toEqual([
      `${RELEASE}-ingest=1/1 localhost/feature-store:dev`,
      `${RELEASE}-operator=1/1 localhost/feature-store:dev`,
      `${RELEASE}-serving=2/2 localhost/feature-store:dev`,
    ]);
    const t0 = Date.now();
    kubectl('apply', '-f', join(repoRoot, 'examples/user-activity.yaml'));
    expect(apply(countsGroup)).toBe(0);
    await readyConsumer('user-activity');
    await readyConsumer('activity-counts');
    figures.applyToConsumerReadySeconds = (Date.now() - t0) / 1000;
    // Who made the consumer Deployment: the API server's audit log names the operator's ServiceAccount.
    const audit = readFileSync(join(repoRoot, '.local/node/cluster/kube/audit.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('/deployments/user-activity-consumer') && l.includes('"verb":"patch"'))
      .map((l) => JSON.parse(l) as { user: { username: string }; responseStatus: { code: number } });
    expect(audit.length).toBeGreaterThan(0);
    expect(new Set(audit.map((a) => a.user.username))).toEqual(
      new Set([`system:serviceaccount:${NS}:${RELEASE}-operator`]),
    );
    const owner = JSON.parse(
      kubectl(
        '-n',
        'default',
        'get',
        'deployment',
        'user-activity-consumer',
        '-o',
        'jsonpath={.metadata.ownerReferences}',
      ),
    ) as { kind: string; name: string; controller: boolean }[];
    expect(owner).toEqual([expect.objectContaining({ kind: 'FeatureGroup', name: 'user-activity', controller: true })]);
    // The pods run as the image's user, on a read-only root filesystem.
    const pod = podOf('user-activity')[0]!;
    expect(kubectl('-n', 'default', 'exec', pod, '--', 'id', '-u').trim()).toBe('10001');
    expect(kubectl('-n', 'default', 'exec', pod, '--', 'sh', '-c', 'touch /app/x 2>&1 || true')).toMatch(
      /Read-only file system/,
    );
  });

  it("in-cluster REST: an event posted to the ingest Service's DNS name is served by the serving Service's DNS name, from a pod", async () => {
    const script = `
      const ingest = 'http://${RELEASE}-ingest.${NS}.svc.cluster.local:8081';
      const serving = 'http://${RELEASE}-serving.${NS}.svc.cluster.local:8080';
      (async () => {
        const posted = await fetch(ingest + '/v1/events', { method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ entity_id: 'in-cluster-1', action: 'from-a-pod', page: '/p', amount: 2.5, timestamp: '2026-11-30T10:00:00Z' }) });
        if (posted.status !== 202) throw new Error('ingest answered ' + posted.status);
        for (let i = 0; i < 600; i++) {
          const r = await fetch(serving + '/features/in-cluster-1');
          // Two groups read the topic: wait for the one of the example to have written.
          const features = r.status === 200 ? (await r.json()).features : {};
          if (features.last_action !== undefined) { console.log(JSON.stringify(features)); return; }
          await new Promise((s) => setTimeout(s, 200));
        }
        throw new Error('not served within 120 s');
      })().catch((e) => { console.error(e.message); process.exit(1); });`;
    const pod = scriptPod('in-cluster-rest', 'localhost/feature-store:dev', script);
    expect(apply(pod)).toBe(0);
    const [phase, out] = await outcome('in-cluster-rest');
    kubectl('-n', 'default', 'delete', 'pod', 'in-cluster-rest', '--wait=false');
    expect(phase).toBe('Succeeded');
    expect(JSON.parse(out)).toMatchObject({
      last_action: 'from-a-pod',
      last_page: '/p',
      last_amount: 2.5,
      last_seen_at: '2026-11-30T10:00:00Z',
    });
  });

  it('kubectl delete pod of a consumer mid-stream: every event counted once, the newest action of every entity served', async () => {
    const file = stream('deleted', 40_000, 2_000, 1);
    const victim = podOf('activity-counts')[0]!;
    let deletedAt = 0;
    const posted = await postWith(file, 10_000, () => {
      deletedAt = Date.now();
      kubectl('-n', 'default', 'delete', 'pod', victim, '--wait=false');
    });
    const replacement = await readyConsumer('activity-counts');
    const replacementReadySeconds = (Date.now() - deletedAt) / 1000;
    expect(replacement).not.toBe(victim);
    const result = await untilExact('deleted');
    figures.consumerPodDeleted = {
      ...result,
      posted: posted.accepted,
      retries: posted.retries,
      replacementReadySeconds,
    };
    expect(posted.accepted).toBe(40_000);
    expect(result).toEqual({
      entities: result.entities,
      events: 40_000,
      missing: 0,
      lost: 0,
      duplicated: 0,
      wrongLatest: 0,
    });
  });

  it("the kernel's kill of a consumer over its memory limit (OOMKilled) mid-stream: every event counted once", async () => {
    const file = stream('oom', 40_000, 2_000, 2);
    const pod = podOf('activity-counts')[0]!;
    const restartsBefore = Number(
      kubectl('-n', 'default', 'get', 'pod', pod, '-o', 'jsonpath={.status.containerStatuses[0].restartCount}'),
    );
    const posted = await postWith(file, 10_000, () => {
      // Memory charged to the consumer container's cgroup until the kernel's OOM killer acts. The
      // filler lowers its own OOM score and raises the consumer's, so the kernel picks the consumer
      // (pid 1): the container is killed as it would be for its own allocations.
      const hog = spawnSync('bash', [
        nodeScript,
        'kubectl',
        '-n',
        'default',
        'exec',
        pod,
        '--',
        'sh',
        '-c',
        'echo 0 > /proc/self/oom_score_adj; echo 1000 > /proc/1/oom_score_adj; exec node -e "const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))"',
      ]).status;
      expect(hog).toBe(137);
    });
    const status = await eventually(
      async () => {
        const s = JSON.parse(
          kubectl('-n', 'default', 'get', 'pod', pod, '-o', 'jsonpath={.status.containerStatuses[0]}'),
        ) as {
          restartCount: number;
          ready: boolean;
          lastState?: { terminated?: { reason: string; exitCode: number } };
        };
        return s.restartCount > restartsBefore && s.ready ? s : undefined;
      },
      'the consumer to be restarted and Ready again',
      180_000,
    );
    const result = await untilExact('oom');
    figures.consumerOomKilled = {
      ...result,
      posted: posted.accepted,
      terminated: status.lastState?.terminated,
      restarts: status.restartCount - restartsBefore,
    };
    expect(status.lastState?.terminated).toEqual(expect.objectContaining({ reason: 'OOMKilled', exitCode: 137 }));
    expect(result).toEqual({
      entities: result.entities,
      events: 40_000,
      missing: 0,
      lost: 0,
      duplicated: 0,
      wrongLatest: 0,
    });
  });

  it('a rolling update of serving under load: no request fails (PDB minAvailable 1, readiness, preStop drain)', async () => {
    const stop = join(work, 'stop-load');
    rmSync(stop, { force: true });
    const id = [...sent.keys()].find((k) => k.startsWith('deleted-'))!;
    const load = inNode<{
      requests: number;
      statuses: Record<string, number>;
      errors: Record<string, number>;
      p50Ms: number;
      p99Ms: number;
      maxMs: number;
    }>(['load', servingUrl, `/features/${id}`, '200', stop, '240']);
    await new Promise((r) => setTimeout(r, 3_000));
    const t0 = Date.now();
    kubectl('-n', NS, 'rollout', 'restart', `deployment/${RELEASE}-serving`);
    kubectl('-n', NS, 'rollout', 'status', `deployment/${RELEASE}-serving`, '--timeout=180s');
    const rolloutSeconds = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 3_000));
    writeFileSync(stop, '');
    const result = await load;
    const failed = result.requests - (result.statuses['200'] ?? 0);
    figures.servingRollingUpdate = { ...result, failed, rolloutSeconds, rps: 200 };
    expect(result.requests).toBeGreaterThan(200 * 6);
    expect(failed).toBe(0);
  });

  it('helm upgrade that changes the image tag: the operator rolls the consumers onto it, and they serve on', async () => {
    run(
      nodeScript,
      'ctr',
      'images',
      'tag',
      '--force',
      'localhost/feature-store:dev',
      'localhost/feature-store:rollout',
    );
    const t0 = Date.now();
    run(
      nodeScript,
      'helm',
      'upgrade',
      RELEASE,
      join(repoRoot, 'charts/feature-store'),
      '-n',
      NS,
      '--reuse-values',
      '--set',
      'image.tag=rollout',
      '--wait',
      '--timeout',
      '5m',
    );
    for (const group of ['user-activity', 'activity-counts']) {
      await eventually(
        async () => {
          const pod = await readyConsumer(group);
          const image = kubectl(
            '-n',
            'default',
            'get',
            'pod',
            pod,
            '-o',
            'jsonpath={.spec.containers[0].image}',
          ).trim();
          return image === 'localhost/feature-store:rollout' ? true : undefined;
        },
        `${group}'s consumer to run the new tag`,
        180_000,
      );
    }
    const rolledSeconds = (Date.now() - t0) / 1000;
    const file = stream('upgraded', 5_000, 500, 3);
    const posted = await inNode<{ accepted: number }>(['post', ingestUrl, file, '500']);
    const result = await untilExact('upgraded');
    figures.helmUpgradeImageTag = { ...result, rolledSeconds };
    expect(posted.accepted).toBe(5_000);
    expect(result).toEqual({
      entities: result.entities,
      events: 5_000,
      missing: 0,
      lost: 0,
      duplicated: 0,
      wrongLatest: 0,
    });
  });

  it('helm uninstall after the FeatureGroups are deleted (deletionPolicy Retain): the data stays, no object of the release is left', async () => {
    kubectl('-n', 'default', 'delete', 'featuregroups', '--all', '--wait', '--timeout=120s');
    run(nodeScript, 'helm', 'uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m');
    // What the cluster and we made ourselves: the namespaces' defaults and the Postgres Secret.
    const ours = new Set([
      'serviceaccount/default',
      'configmap/kube-root-ca.crt',
      'secret/fs-postgres',
      'service/kubernetes',
    ]);
    const names = (...args: string[]) =>
      kubectl(...args, '-o', 'name')
        .split('\n')
        .filter(Boolean);
    let left: string[] = [];
    await eventually(
      async () => {
        left = [
          ...names(
            '-n',
            NS,
            'get',
            'all,serviceaccounts,secrets,configmaps,roles,rolebindings,poddisruptionbudgets,leases',
          ),
          ...names('-n', 'default', 'get', 'all,secrets'),
          ...names('get', 'clusterroles,clusterrolebindings', '-l', `app.kubernetes.io/instance=${RELEASE}`),
        ].filter((o) => !ours.has(o));
        return left.length === 0 ? true : undefined;
      },
      'every object of the release to be gone',
      180_000,
    ).catch(() => undefined);
    const rows = Object.fromEntries(
      ['user_activity', 'activity_counts'].map((t) => [
        t,
        Number(run(nodeScript, 'psql', '-tAc', `SELECT count(*) FROM features.fs_default_${t}`).trim()),
      ]),
    );
    figures.helmUninstall = { objectsLeft: left, rowsRetained: rows };
    expect(left).toEqual([]);
    expect(rows.activity_counts).toBe(sent.size + 1); // and in-cluster-1
    expect(rows.user_activity).toBe(sent.size + 1);
  });

  it('skaffold run -p test-node (buildah build, push to the node registry, helm install) ends with the platform served', async () => {
    const t0 = Date.now();
    run(podsScript, 'skaffold');
    const skaffoldSeconds = (Date.now() - t0) / 1000;
    const images = kubectl(
      '-n',
      NS,
      'get',
      'pods',
      '-o',
      'jsonpath={range .items[*]}{.status.containerStatuses[0].imageID}{"\\n"}{end}',
    )
      .trim()
      .split('\n');
    const registry = nodeEnv().REGISTRY!;
    expect(new Set(images.map((i) => i.split('@')[0]))).toEqual(new Set([`${registry}/feature-store`]));
    kubectl('apply', '-f', join(repoRoot, 'examples/user-activity.yaml'));
    const consumer = await readyConsumer('user-activity');
    expect(kubectl('-n', 'default', 'get', 'pod', consumer, '-o', 'jsonpath={.spec.containers[0].image}')).toMatch(
      new RegExp(`^${registry.replace(/\./g, '\\.')}/feature-store:`),
    );
    locateServices();
    const file = join(work, 'skaffold.ndjson');
    writeFileSync(
      file,
      JSON.stringify({ entity_id: 'skaffold-1', action: 'deployed', timestamp: new Date().toISOString() }) + '\n',
    );
    expect((await inNode<{ accepted: number }>(['post', ingestUrl, file, '10'])).accepted).toBe(1);
    writeFileSync(join(work, 'skaffold.ids'), 'skaffold-1\n');
    const served = await eventually(async () => {
      const answer = (await inNode<Record<string, Served>>(['read', servingUrl, join(work, 'skaffold.ids')]))[
        'skaffold-1'
      ];
      return answer?.status === 200 ? answer.body.features : undefined;
    }, 'the event to be served');
    figures.skaffoldRun = { skaffoldSeconds };
    expect(served).toMatchObject({ last_action: 'deployed' });
  });

  it('pods.sh down leaves nothing on the machine: processes, mounts, network namespaces, interfaces, iptables rules', () => {
    run(podsScript, 'down');
    expect(leftovers(before)).toEqual(nothingLeft);
  });
});
