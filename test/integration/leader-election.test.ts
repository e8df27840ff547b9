import * as nodeModule from 'node:module';
import { randomBytes } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { createLogger } from '../../core/logger';
import { sleep } from '../../core/retry';
import { LeaderElector } from '../../operator/leader';

/**
 * Leader election against a real kube-apiserver (test/servers/kube.sh; the jest global setup sets
 * KUBECONFIG). Short durations: lease 3 s, renew deadline 2 s, retry 0.5 s.
 */

/**
 * @kubernetes/client-node 1.x is ESM-only. Jest's CommonJS module system on Node 20 cannot load it
 * ("Must use import to load ES Module"), but Node itself can (require(esm), Node >= 20.19), so the
 * client is loaded through Node's own loader, outside jest's module registry. The elector under test
 * only imports client-node types, so it is loaded by jest as usual.
 */
function loadClientNode(): typeof k8s {
  const { _load } = nodeModule as unknown as { _load: (request: string, parent: null) => unknown };
  return _load(require.resolve('@kubernetes/client-node'), null) as typeof k8s;
}

const LEASE_SECONDS = 3;
const RENEW_DEADLINE_SECONDS = 2;
const RETRY_SECONDS = 0.5;

const log = createLogger('leader-election-test', process.env.LOG_LEVEL ?? 'warn');
const client = loadClientNode();
let coordination: k8s.CoordinationV1Api;
let core: k8s.CoreV1Api;
const namespace = `leader-election-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  const kubeconfig = process.env.KUBECONFIG;
  if (!kubeconfig) {
    throw new Error(
      'KUBECONFIG is not set: the integration global setup sets it, or run `bash test/servers/kube.sh start` and set KUBECONFIG=$PWD/.local/kubeconfig',
    );
  }
  const config = new client.KubeConfig();
  config.loadFromFile(kubeconfig);
  coordination = config.makeApiClient(client.CoordinationV1Api);
  core = config.makeApiClient(client.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
});

const electors: LeaderElector[] = [];
afterEach(async () => {
  await Promise.all(electors.splice(0).map((elector) => elector.stop()));
});

afterAll(async () => {
  // No namespace controller runs in this test server, so the namespace stays Terminating; harmless.
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

interface Candidate {
  id: string;
  elector: LeaderElector;
  run: Promise<void>;
  started: number;
  stopped: number;
}

/**
 * Starts candidates on one Lease and checks continuously (at every onStartedLeading, plus a 50 ms
 * sampler) that no two ever lead at once.
 */
function campaign(lease: string, ids: string[]) {
  const overlaps: string[] = [];
  let all: Candidate[] = [];
  const candidates = ids.map((id): Candidate => {
    const elector = new LeaderElector(coordination, {
      namespace,
      name: lease,
      identity: id,
      leaseDurationSeconds: LEASE_SECONDS,
      renewDeadlineSeconds: RENEW_DEADLINE_SECONDS,
      retryPeriodSeconds: RETRY_SECONDS,
      log,
    });
    electors.push(elector);
    const candidate: Candidate = { id, elector, run: Promise.resolve(), started: 0, stopped: 0 };
    candidate.run = elector.run({
      onStartedLeading: () => {
        candidate.started++;
        const others = all.filter((c) => c !== candidate && c.elector.isLeader()).map((c) => c.id);
        if (others.length > 0) overlaps.push(`${id} started leading while ${others.join(',')} led`);
      },
      onStoppedLeading: () => {
        candidate.stopped++;
      },
    });
    return candidate;
  });
  all = candidates;
  const samples: string[][] = [];
  const sampler = setInterval(() => samples.push(candidates.filter((c) => c.elector.isLeader()).map((c) => c.id)), 50);
  return {
    candidates,
    samples,
    overlaps,
    leaders: (): Candidate[] => candidates.filter((c) => c.elector.isLeader()),
    finish: (): void => clearInterval(sampler),
  };
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
  return Date.now() - start;
}

async function readLease(name: string): Promise<k8s.V1Lease> {
  return coordination.readNamespacedLease({ name, namespace });
}

/** One leader from the start until `ms` later: exactly one leads at every 50 ms sample. */
async function expectSingleSteadyLeader(run: ReturnType<typeof campaign>, ms: number): Promise<Candidate> {
  await waitFor(() => run.leaders().length > 0, 15_000, 'a first leader');
  const leader = run.leaders()[0]!;
  const from = run.samples.length;
  await sleep(ms);
  const window = run.samples.slice(from);
  expect(window.length).toBeGreaterThanOrEqual(Math.floor(ms / 50 / 2)); // the sampler really ran
  expect(window.filter((ids) => ids.length !== 1 || ids[0] !== leader.id)).toEqual([]);
  return leader;
}

test('two electors: exactly one leads; when it stops (releasing), the other takes over within ~retryPeriod', async () => {
  const run = campaign('release', ['replica-a', 'replica-b']);
  try {
    const leader = await expectSingleSteadyLeader(run, 3_000);
    const follower = run.candidates.find((c) => c !== leader)!;

    const held = await readLease('release');
    expect(held.spec?.holderIdentity).toBe(leader.id);
    expect(held.spec?.leaseDurationSeconds).toBe(LEASE_SECONDS);
    expect(held.spec?.leaseTransitions).toBe(0);
    // MicroTime round trip: the server stores (and returns) six fractional digits.
    expect(String(held.spec?.renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(String(held.spec?.acquireTime)).toMatch(/\.\d{6}Z$/);
    const renewedAt = new Date(String(held.spec?.renewTime)).getTime();
    expect(Math.abs(Date.now() - renewedAt)).toBeLessThan(RETRY_SECONDS * 1000 + 2_000);

    expect(follower.elector.isLeader()).toBe(false);
    await leader.elector.stop();
    const stoppedAt = Date.now();
    expect(leader.elector.isLeader()).toBe(false);
    await leader.run; // run() has ended
    expect(leader.stopped).toBe(0); // onStoppedLeading means "lost", not "asked to stop"

    await waitFor(() => follower.elector.isLeader(), 10_000, 'the follower to take over');
    // It takes the released lease at its next try: retryPeriod (+20% jitter) plus two API calls.
    expect(Date.now() - stoppedAt).toBeLessThan(RETRY_SECONDS * 1.2 * 1000 + 1_000);

    const taken = await readLease('release');
    expect(taken.spec?.holderIdentity).toBe(follower.id);
    expect(taken.spec?.leaseTransitions).toBe(1);
    expect(taken.spec?.leaseDurationSeconds).toBe(LEASE_SECONDS);
  } finally {
    run.finish();
  }
  expect(run.overlaps).toEqual([]);
  expect(run.samples.filter((ids) => ids.length > 1)).toEqual([]);
});

test('a leader that stops renewing without releasing is replaced after the lease duration, not before', async () => {
  const run = campaign('abandon', ['replica-a', 'replica-b']);
  try {
    const leader = await expectSingleSteadyLeader(run, 1_500);
    const follower = run.candidates.find((c) => c !== leader)!;

    await leader.elector.stop({ release: false }); // as if the process had hung or died
    const abandonedAt = Date.now();
    expect(leader.elector.isLeader()).toBe(false);
    expect(leader.stopped).toBe(0);
    const stale = await readLease('abandon');
    expect(stale.spec?.holderIdentity).toBe(leader.id); // not released

    await waitFor(() => follower.elector.isLeader(), 15_000, 'the follower to take over the expired lease');
    const takeoverMs = Date.now() - abandonedAt;
    // The last renewal was at most one retry period before the abandonment; the follower needs the
    // lease to be unchanged for a full lease duration, then notices at its next try.
    expect(takeoverMs).toBeGreaterThanOrEqual((LEASE_SECONDS - RETRY_SECONDS) * 1000 - 200);
    expect(takeoverMs).toBeLessThan((LEASE_SECONDS + 3 * RETRY_SECONDS) * 1000 + 1_500);

    const taken = await readLease('abandon');
    expect(taken.spec?.holderIdentity).toBe(follower.id);
    expect(taken.spec?.leaseTransitions).toBe(1);
  } finally {
    run.finish();
  }
  expect(run.overlaps).toEqual([]);
  expect(run.samples.filter((ids) => ids.length > 1)).toEqual([]);
});

test('a leader that finds the lease taken by someone else steps down at once and does not campaign again', async () => {
  const run = campaign('intruder', ['replica-a']);
  try {
    const [candidate] = run.candidates;
    await waitFor(() => candidate!.elector.isLeader(), 15_000, 'the elector to lead');

    // Another party overwrites the lease (e.g. an operator from an older version with other settings).
    const lease = await readLease('intruder');
    const now = new client.V1MicroTime();
    await coordination.replaceNamespacedLease({
      name: 'intruder',
      namespace,
      body: {
        ...lease,
        spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: now, acquireTime: now, leaseDurationSeconds: 60 },
      },
    });

    await waitFor(
      () => !candidate!.elector.isLeader(),
      (RETRY_SECONDS + RENEW_DEADLINE_SECONDS) * 1000 + 1_000,
      'the elector to step down',
    );
    await candidate!.run; // run() returned: the operator would exit now
    expect(candidate!.stopped).toBe(1);
    await sleep(RETRY_SECONDS * 1000 * 2);
    expect(candidate!.elector.isLeader()).toBe(false);
    expect(candidate!.started).toBe(1);
    expect((await readLease('intruder')).spec?.holderIdentity).toBe('intruder');
  } finally {
    run.finish();
  }
});

test('with an owner, the Lease carries its owner reference: when created, and when taken over from one made without it', async () => {
  const owner = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    name: 'operator',
    uid: '5f1c0e4e-1111-4222-8333-944455556666',
  };
  const elect = (name: string) => {
    const elector = new LeaderElector(coordination, {
      namespace,
      name,
      identity: 'owned',
      leaseDurationSeconds: LEASE_SECONDS,
      renewDeadlineSeconds: RENEW_DEADLINE_SECONDS,
      retryPeriodSeconds: RETRY_SECONDS,
      owner,
      log,
    });
    electors.push(elector);
    void elector.run({ onStartedLeading: () => undefined, onStoppedLeading: () => undefined });
    return elector;
  };
  const created = elect('owned-new');
  await waitFor(() => created.isLeader(), 15_000, 'the elector to lead');
  expect((await readLease('owned-new')).metadata?.ownerReferences).toEqual([owner]);

  // A Lease left by an operator version that set no owner: the next holder adds it, once.
  await coordination.createNamespacedLease({
    namespace,
    body: { metadata: { name: 'owned-old' }, spec: { holderIdentity: '', leaseDurationSeconds: 1 } },
  });
  const takeover = elect('owned-old');
  await waitFor(() => takeover.isLeader(), 15_000, 'the elector to take the old lease');
  await sleep(RETRY_SECONDS * 1000 * 3); // a few renewals
  expect((await readLease('owned-old')).metadata?.ownerReferences).toEqual([owner]);
});
