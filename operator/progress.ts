import type { Admin } from 'kafkajs';
import type { Pool } from 'pg';
import { Gauge, type Registry } from 'prom-client';
import { groupId } from '../core/featuregroup/schema';
import { consumerGroupFor } from '../core/kafka';
import type { Logger } from '../core/logger';
import { lagOf, watermarksOf } from '../core/progress';
import { repeatEvery } from '../core/repeat';
import { readPartitionProgress } from '../core/storage/progress';
import { listGroups } from '../core/storage/registry';
import { describeRecordedError } from './database-errors';

export interface StalledPartition {
  partition: number;
  lag: number;
  /** Since when its stored offset has not moved while it had lag. */
  sinceMs: number;
  lastError: string | undefined;
}

/** One group's consumption as last observed. */
export interface GroupProgress {
  /** Records behind, summed over partitions. */
  lag: number;
  newestEventMs: number | undefined;
  stalled: StalledPartition[];
}

export interface ProgressMonitorOptions {
  pool: Pool;
  /** A connected Kafka admin (the operator's). */
  admin: () => Promise<Admin>;
  /** A partition with lag whose stored offset has not moved for this long is stalled. */
  stallAfterMs: number;
  intervalMs: number;
  /** Called with a group's key when what its status shows changed: the controller reconciles it. */
  onChange: (key: string) => void;
  log: Logger;
  registry: Registry;
  now?: () => number;
}

/**
 * Watches every registered group's lag (Kafka high watermarks against the offsets its consumers
 * stored in Postgres) and tells a stalled partition: one with lag whose offset has not moved for
 * `stallAfterMs`. It works from Kafka and Postgres alone, so a group whose consumers are down or
 * failing every batch shows up the same way. Status is written by the reconciler, which reads the
 * last observation here; this only wakes it.
 */
export class ProgressMonitor {
  private readonly observed = new Map<string, GroupProgress>();
  /** group/partition → the stored offset last seen and since when it has not moved while behind. */
  private readonly unmoved = new Map<string, { offset: number; sinceMs: number }>();
  private readonly lagGauge: Gauge<'namespace' | 'name'>;
  private readonly stalledGauge: Gauge<'namespace' | 'name'>;
  private readonly invalidGauge: Gauge;
  private stopRepeating: () => void = () => undefined;
  private readonly now: () => number;

  constructor(private readonly options: ProgressMonitorOptions) {
    const registers = [options.registry];
    this.lagGauge = new Gauge({
      name: 'featurestore_feature_group_lag_records',
      help: "Records a group's consumers have not stored yet, over all partitions",
      labelNames: ['namespace', 'name'],
      registers,
    });
    this.stalledGauge = new Gauge({
      name: 'featurestore_feature_group_stalled',
      help: '1 while a partition of the group has lag and its stored offset does not move',
      labelNames: ['namespace', 'name'],
      registers,
    });
    this.invalidGauge = new Gauge({
      name: 'featurestore_registry_invalid_rows',
      help: 'Registry rows this version cannot read (skipped)',
      registers,
    });
    this.now = options.now ?? Date.now;
  }

  get(key: string): GroupProgress | undefined {
    return this.observed.get(key);
  }

  start(): void {
    this.stopRepeating = repeatEvery(
      () => this.observe(),
      this.options.intervalMs,
      (error) => this.options.log.warn({ err: error }, 'could not observe consumer progress'),
    );
  }

  stop(): void {
    this.stopRepeating();
  }

  async observe(): Promise<void> {
    const { pool, log } = this.options;
    const { groups, invalid } = await listGroups(pool);
    this.invalidGauge.set(invalid.length);
    for (const row of invalid) {
      log.error(
        { group: groupId(row.ref), reason: row.error },
        'registry row cannot be read; reconciling the group rewrites it',
      );
      this.options.onChange(groupId(row.ref));
    }
    const admin = await this.options.admin();
    const watermarksByTopic = new Map<string, ReturnType<typeof watermarksOf>>();
    const seen = new Set<string>();
    for (const group of groups) {
      const key = groupId(group.ref);
      const topic = group.spec.source.topic;
      seen.add(key);
      let watermarks = watermarksByTopic.get(topic);
      if (!watermarks) {
        watermarks = await admin.fetchTopicOffsets(topic).then(watermarksOf, () => []);
        watermarksByTopic.set(topic, watermarks);
      }
      const stored = await readPartitionProgress(pool, consumerGroupFor(group.ref), topic);
      const next = this.progressOf(key, watermarks, stored);
      const before = this.observed.get(key);
      this.observed.set(key, next);
      this.lagGauge.set(group.ref, next.lag);
      this.stalledGauge.set(group.ref, next.stalled.length > 0 ? 1 : 0);
      if (!before || before.lag !== next.lag || before.stalled.length !== next.stalled.length)
        this.options.onChange(key);
    }
    for (const key of [...this.observed.keys()]) if (!seen.has(key)) this.forget(key);
  }

  private progressOf(
    key: string,
    watermarks: ReturnType<typeof watermarksOf>,
    stored: Awaited<ReturnType<typeof readPartitionProgress>>,
  ): GroupProgress {
    const now = this.now();
    const progress: GroupProgress = { lag: 0, newestEventMs: undefined, stalled: [] };
    for (const marks of watermarks) {
      const partition = stored.get(marks.partition);
      const lag = lagOf(marks, partition?.nextOffset);
      progress.lag += lag;
      if (partition?.newestEventMs !== undefined)
        progress.newestEventMs = Math.max(progress.newestEventMs ?? -Infinity, partition.newestEventMs);
      const id = `${key}#${marks.partition}`;
      const offset = partition?.nextOffset ?? -1;
      const last = this.unmoved.get(id);
      if (lag === 0 || !last || last.offset !== offset) {
        this.unmoved.set(id, { offset, sinceMs: now });
        continue;
      }
      if (now - last.sinceMs >= this.options.stallAfterMs) {
        progress.stalled.push({
          partition: marks.partition,
          lag,
          sinceMs: last.sinceMs,
          lastError: partition?.lastError,
        });
      }
    }
    return progress;
  }

  private forget(key: string): void {
    this.observed.delete(key);
    for (const id of [...this.unmoved.keys()]) if (id.startsWith(`${key}#`)) this.unmoved.delete(id);
    const [namespace, name] = key.split('/') as [string, string];
    this.lagGauge.remove({ namespace, name });
    this.stalledGauge.remove({ namespace, name });
  }
}

/**
 * The Stalled condition's message: which partitions, how far behind, since when, and why (as a
 * sentence: the database's own text is served by GET /v1/feature-groups/{namespace}/{name}).
 */
export function describeStall(stalled: readonly StalledPartition[], nowMs: number): string {
  return stalled
    .map((p) => {
      const seconds = Math.round((nowMs - p.sinceMs) / 1000);
      return `partition ${p.partition}: ${p.lag} records behind, no progress for ${seconds}s${p.lastError ? `; last error: ${describeRecordedError(p.lastError)}` : ''}`;
    })
    .join('; ');
}
