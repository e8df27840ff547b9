import type {
  CoordinationV1Api,
  V1Lease,
  V1LeaseSpec,
  V1MicroTime,
  V1ObjectMeta,
  V1OwnerReference,
} from '@kubernetes/client-node';
import type { Logger } from '../core/logger';

/** The three Lease calls the elector makes; a CoordinationV1Api satisfies it. */
export type LeaseApi = Pick<
  CoordinationV1Api,
  'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'
>;

export interface LeaderElectorOptions {
  namespace: string;
  /** Name of the coordination.k8s.io/v1 Lease all replicas compete for. */
  name: string;
  /** Unique per replica (e.g. the pod name); written to spec.holderIdentity. */
  identity: string;
  /** How long a non-renewed lease stays valid for the others (integer seconds). Default 15. */
  leaseDurationSeconds?: number;
  /** The leader gives up if it has not renewed for this long. Default 10; must be < leaseDuration. */
  renewDeadlineSeconds?: number;
  /** Time between acquire attempts and between renewals. Default 2; must be < renewDeadline / 1.2. */
  retryPeriodSeconds?: number;
  /**
   * An object the Lease belongs to (the chart: the operator's ServiceAccount). The garbage
   * collector then deletes the Lease with it, so `helm uninstall` leaves no Lease behind even when
   * the release could not be handed over (uninstall removes the operator's RBAC at the same time).
   */
  owner?: V1OwnerReference;
  log: Logger;
}

export interface LeaderCallbacks {
  onStartedLeading: () => void;
  /**
   * Leadership was lost: no renewal succeeded within renewDeadline, or another holder was seen.
   * run() returns right after it and never campaigns again: the process should exit. Not called
   * for stop(), whose caller already knows (so a handler may simply call process.exit(1)).
   */
  onStoppedLeading: () => void;
}

export interface StopOptions {
  /**
   * Hand the lease over at once (holderIdentity '' and leaseDurationSeconds 1) if it is held.
   * Default true. false just stops renewing, as if the process had died (the others wait for the
   * lease to expire): for tests, or when the API server is known to be unreachable.
   */
  release?: boolean;
}

/**
 * MicroTime as the API server parses it (Go layout 2006-01-02T15:04:05.000000Z07:00: exactly six
 * fractional digits; a JS Date's 3-digit ISO string is rejected with a 400). client-node 1.x does not
 * convert V1MicroTime fields itself: it sends the value through JSON.stringify, which calls this
 * toISOString, and hands back the server's string unparsed on reads. Same as client-node's
 * V1MicroTime, defined here so this module does not load the (ESM-only) client at runtime.
 */
class MicroTime extends Date {
  override toISOString(): string {
    return `${super.toISOString().slice(0, -1)}000Z`;
  }
}

/** A MicroTime value for Lease spec fields. */
export function microTime(date: Date = new Date()): V1MicroTime {
  return new MicroTime(date.getTime());
}

/** Milliseconds since the epoch of a MicroTime field: a Date, or (as client-node returns it) a string. */
function timeMs(value: Date | string | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

/** HTTP status of a client-node ApiException (or undefined for network errors and the like). */
function httpStatus(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number')
    return error.code;
  return undefined;
}

/** Ordinary errors carry the API server's Status body in the message; keep log lines short. */
function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 500 ? `${text.slice(0, 500)}...` : text;
}

type Attempt =
  | { kind: 'acquired'; lease: V1Lease; sentAt: number }
  /** Someone else holds a valid lease. */
  | { kind: 'held'; holder: string }
  /** Conflict (someone else wrote first), API error, or timeout: nothing is known; try again. */
  | { kind: 'retry'; reason: string };

const JITTER = 0.2;

/**
 * Leader election on a coordination.k8s.io/v1 Lease, following client-go's leaderelection:
 *
 * - acquire: create the Lease if missing, or take it over when it is released (empty holder) or
 *   expired; every write carries the resourceVersion that was read, so of two candidates racing for
 *   the same lease exactly one wins and the other gets 409 Conflict;
 * - expiry is judged twice, and both must agree: the holder's renewTime + leaseDurationSeconds is in
 *   the past (by our clock), AND this elector has seen no change of the Lease for leaseDurationSeconds
 *   (by our own monotonic observation, as client-go does, so a clock skew between replicas cannot
 *   cause two leaders). A newly started replica therefore waits one lease duration before taking
 *   over a lease whose holder died;
 * - while leading: renew every retryPeriod; if no renewal has succeeded for renewDeadline (measured
 *   from the moment the last successful renewal was sent, each request cut off at that deadline), or
 *   another holder is seen, leadership is lost: isLeader() turns false, onStoppedLeading is called and
 *   run() returns. It never tries to acquire again (the operator is expected to exit), so leadership
 *   is never silently regained.
 * - stop() ends run(): isLeader() turns false, then the lease is released if it was held (unlike
 *   client-go, onStoppedLeading is not called for a requested stop).
 *
 * Safety needs renewDeadline < leaseDuration (checked), and a Node event loop that is not blocked for
 * longer than leaseDuration - renewDeadline.
 */
export class LeaderElector {
  private readonly namespace: string;
  private readonly name: string;
  private readonly identity: string;
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly log: Logger;
  private readonly owner: V1OwnerReference | undefined;

  private leading = false;
  private running = false;
  private stopRequested = false;
  private releaseOnStop = true;
  private done: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;

  /** The Lease as this elector last wrote it (for renewals and the release). */
  private current: V1Lease | undefined;
  /** When the last successful write was sent (our clock); the renew deadline counts from it. */
  private lastRenewAt = 0;
  /** The last resourceVersion read, and when (monotonic ms) it was first seen. */
  private observed: { resourceVersion: string; holder: string; at: number } | undefined;

  constructor(
    private readonly api: LeaseApi,
    options: LeaderElectorOptions,
  ) {
    this.namespace = options.namespace;
    this.name = options.name;
    this.identity = options.identity;
    this.owner = options.owner;
    this.leaseDurationSeconds = options.leaseDurationSeconds ?? 15;
    const renewDeadlineSeconds = options.renewDeadlineSeconds ?? 10;
    const retryPeriodSeconds = options.retryPeriodSeconds ?? 2;
    this.renewDeadlineMs = renewDeadlineSeconds * 1000;
    this.retryPeriodMs = retryPeriodSeconds * 1000;
    this.log = options.log.child({ lease: `${this.namespace}/${this.name}`, identity: this.identity });
    if (!this.identity) throw new Error('LeaderElector: identity must not be empty');
    if (!Number.isInteger(this.leaseDurationSeconds) || this.leaseDurationSeconds < 1) {
      throw new Error(
        `LeaderElector: leaseDurationSeconds must be a positive integer, got ${this.leaseDurationSeconds}`,
      );
    }
    if (
      !(retryPeriodSeconds > 0) ||
      !(renewDeadlineSeconds > retryPeriodSeconds * (1 + JITTER)) ||
      !(this.leaseDurationSeconds > renewDeadlineSeconds)
    ) {
      throw new Error(
        `LeaderElector: need leaseDurationSeconds > renewDeadlineSeconds > ${1 + JITTER} × retryPeriodSeconds > 0, ` +
          `got ${this.leaseDurationSeconds}, ${renewDeadlineSeconds}, ${retryPeriodSeconds}`,
      );
    }
  }

  /** True from onStartedLeading until leadership is lost or stop() is called. */
  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until it leads, then renews until stop() or until leadership is lost. Resolves when
   * it has stopped (after onStoppedLeading, or after the release on stop()). Single use: after it
   * returned, a new LeaderElector is needed. Rejects only if onStartedLeading throws.
   */
  async run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.running) throw new Error('LeaderElector.run() is already running');
    if (this.stopRequested) return;
    this.running = true;
    let finished!: () => void;
    this.done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    let lost = false;
    try {
      if (!(await this.acquire())) return;
      this.leading = true;
      if (this.stopRequested) return;
      this.log.info('became leader');
      callbacks.onStartedLeading();
      lost = (await this.renewLoop()) === 'lost';
    } finally {
      const held = this.leading;
      this.leading = false;
      if (lost) {
        try {
          callbacks.onStoppedLeading();
        } catch (error) {
          this.log.error({ err: error }, 'onStoppedLeading threw');
        }
      }
      try {
        if (held && this.stopRequested && this.releaseOnStop) await this.release();
      } catch (error) {
        this.log.warn({ err: error }, 'could not release the lease');
      } finally {
        this.running = false;
        finished();
      }
    }
  }

  /**
   * Ends run() and waits for it: stops campaigning or renewing (an API call in flight is waited for,
   * at most renewDeadline) and releases a held lease unless told not to. Does not call onStoppedLeading.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    this.releaseOnStop = options.release ?? true;
    this.stopRequested = true;
    this.wake?.();
    await this.done;
  }

  // ---------------------------------------------------------------------------------------------

  private async acquire(): Promise<boolean> {
    let lastHolder: string | undefined;
    while (!this.stopRequested) {
      const result = await this.attemptBefore(Date.now() + this.renewDeadlineMs);
      if (result.kind === 'acquired') {
        this.current = result.lease;
        this.lastRenewAt = result.sentAt;
        return true;
      }
      if (result.kind === 'held') {
        if (result.holder !== lastHolder)
          this.log.info({ holder: result.holder }, 'lease is held by another replica; waiting');
        lastHolder = result.holder;
      } else {
        this.log.debug({ reason: result.reason }, 'lease not acquired; retrying');
      }
      await this.sleep(this.retryPeriodMs * (1 + Math.random() * JITTER));
    }
    return false;
  }

  /** Renews until stop() or until leadership is lost, and says which. */
  private async renewLoop(): Promise<'lost' | 'stopped'> {
    while (!this.stopRequested) {
      await this.sleep(this.retryPeriodMs);
      for (;;) {
        if (this.stopRequested) return 'stopped';
        const deadline = this.lastRenewAt + this.renewDeadlineMs;
        if (Date.now() >= deadline) {
          this.log.error(
            { renewDeadlineMs: this.renewDeadlineMs },
            'could not renew the lease within the renew deadline; leadership lost',
          );
          return 'lost';
        }
        const result = await this.attemptBefore(deadline);
        if (result.kind === 'acquired') {
          this.current = result.lease;
          this.lastRenewAt = result.sentAt;
          break;
        }
        if (result.kind === 'held') {
          this.log.error({ holder: result.holder }, 'the lease is held by another replica; leadership lost');
          return 'lost';
        }
        this.log.warn({ reason: result.reason }, 'lease renewal failed; retrying until the renew deadline');
        await this.sleep(Math.min(this.retryPeriodMs, Math.max(0, deadline - Date.now())));
      }
    }
    return 'stopped';
  }

  /** One acquire-or-renew attempt, cut off at `deadline` (epoch ms). Never rejects. */
  private async attemptBefore(deadline: number): Promise<Attempt> {
    const ms = Math.max(1, deadline - Date.now());
    const result = await this.raceTimeout(this.tryAcquireOrRenew(), ms);
    return result ?? { kind: 'retry', reason: `no answer from the API server within ${ms} ms` };
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    const { namespace, name, identity } = this;
    let existing: V1Lease;
    try {
      existing = await this.api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (httpStatus(error) !== 404) return { kind: 'retry', reason: `read: ${describe(error)}` };
      const sentAt = Date.now();
      const now = microTime(new Date(sentAt));
      const body: V1Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace, ...(this.owner ? { ownerReferences: [this.owner] } : {}) },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: this.leaseDurationSeconds,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        },
      };
      try {
        const lease = await this.api.createNamespacedLease({ namespace, body });
        this.observe(lease);
        return { kind: 'acquired', lease, sentAt };
      } catch (createError) {
        const status = httpStatus(createError);
        return {
          kind: 'retry',
          reason: status === 409 ? 'another replica created the lease first' : `create: ${describe(createError)}`,
        };
      }
    }

    this.observe(existing);
    const spec: V1LeaseSpec = existing.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (holder !== '' && holder !== identity && !this.expired(spec)) return { kind: 'held', holder };

    const sentAt = Date.now();
    const now = microTime(new Date(sentAt));
    const renewing = holder === identity;
    const body: V1Lease = {
      ...existing,
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: this.withOwner(existing.metadata ?? {}),
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: this.leaseDurationSeconds,
        acquireTime: renewing && spec.acquireTime !== undefined ? spec.acquireTime : now,
        renewTime: now,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (renewing ? 0 : 1),
      },
    };
    try {
      // body.metadata.resourceVersion is the one just read: a concurrent writer makes this a 409.
      const lease = await this.api.replaceNamespacedLease({ name, namespace, body });
      this.observe(lease);
      if (!renewing)
        this.log.info(
          { previousHolder: holder || undefined, leaseTransitions: lease.spec?.leaseTransitions },
          'acquired the lease',
        );
      return { kind: 'acquired', lease, sentAt };
    } catch (error) {
      const status = httpStatus(error);
      return {
        kind: 'retry',
        reason: status === 409 ? 'conflict: the lease changed since it was read' : `replace: ${describe(error)}`,
      };
    }
  }

  /** Both clocks must agree that the holder's lease ran out (see the class comment). */
  private expired(spec: V1LeaseSpec): boolean {
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseDurationSeconds) * 1000;
    const renewedAt = timeMs(spec.renewTime ?? spec.acquireTime);
    const byRenewTime = renewedAt === undefined || renewedAt + durationMs < Date.now();
    const byObservation = this.observed !== undefined && this.observed.at + durationMs < performance.now();
    return byRenewTime && byObservation;
  }

  /** The Lease's metadata with the owner reference added, for a Lease made before it had one. */
  private withOwner(metadata: V1ObjectMeta): V1ObjectMeta {
    const owner = this.owner;
    const refs = metadata.ownerReferences ?? [];
    if (!owner || refs.some((r) => r.uid === owner.uid)) return metadata;
    return { ...metadata, ownerReferences: [...refs, owner] };
  }

  private observe(lease: V1Lease): void {
    const resourceVersion = lease.metadata?.resourceVersion ?? '';
    if (this.observed?.resourceVersion === resourceVersion) return;
    const holder = lease.spec?.holderIdentity ?? '';
    if (this.observed !== undefined && this.observed.holder !== holder)
      this.log.info({ holder: holder || undefined }, 'lease holder changed');
    this.observed = { resourceVersion, holder, at: performance.now() };
  }

  /** Hands the lease over: no holder, 1 s duration, so a waiting replica takes it at its next try. */
  private async release(): Promise<void> {
    const { namespace, name } = this;
    let lease = this.current;
    for (let attempt = 0; attempt < 2 && lease !== undefined; attempt++) {
      const now = microTime();
      const body: V1Lease = {
        ...lease,
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
      };
      const write = this.api.replaceNamespacedLease({ name, namespace, body }).then(
        () => 'released' as const,
        (error: unknown) => (httpStatus(error) === 409 ? ('conflict' as const) : describe(error)),
      );
      const outcome = await this.raceTimeout(write, this.renewDeadlineMs);
      if (outcome === 'released') {
        this.log.info('released the lease');
        return;
      }
      if (outcome !== 'conflict') {
        this.log.warn(
          { reason: outcome ?? 'timeout' },
          'could not release the lease; the others take over when it expires',
        );
        return;
      }
      // Changed since our last write (e.g. a renewal that timed out but landed): release only if still ours.
      const fresh = await this.raceTimeout(
        this.api.readNamespacedLease({ name, namespace }).catch(() => undefined),
        this.renewDeadlineMs,
      );
      lease = fresh?.spec?.holderIdentity === this.identity ? fresh : undefined;
    }
  }

  private async raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits `ms`, or less if stop() is called. */
  private sleep(ms: number): Promise<void> {
    if (this.stopRequested) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        if (this.wake === finish) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.wake = finish;
    });
  }
}
