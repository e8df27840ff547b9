import type { Admin } from 'kafkajs';
import type { Pool } from 'pg';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../core/logger';
import { lagOf, watermarksOf } from '../../core/progress';
import { repeatEvery } from '../../core/repeat';
import { readPartitionProgress } from '../../core/storage/progress';

/**
 * Per assigned partition, every interval: lag (Kafka's high watermark minus the offset stored in
 * Postgres) and the newest event time stored, as gauges. Each replica reports its own partitions.
 */
export class ProgressReporter {
  private readonly lag: Gauge<'topic' | 'partition'>;
  private readonly newest: Gauge<'topic' | 'partition'>;
  private assigned: number[] = [];
  private stopRepeating: () => void = () => undefined;

  constructor(
    private readonly deps: { admin: Admin; pool: Pool; consumerGroup: string; topic: string; log: Logger },
    registry: Registry,
  ) {
    this.lag = new Gauge({
      name: 'featurestore_consumer_lag_records',
      help: 'High watermark minus the offset stored in Postgres, per assigned partition',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    });
    this.newest = new Gauge({
      name: 'featurestore_consumer_newest_event_time_seconds',
      help: 'Newest event time stored, per assigned partition (epoch seconds)',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    });
  }

  assign(partitions: number[]): void {
    this.assigned = [...partitions];
    this.lag.reset();
    this.newest.reset();
  }

  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.stopRepeating = repeatEvery(
      () => this.sample(),
      intervalMs,
      (error) => this.deps.log.warn({ err: error }, 'could not sample consumer lag'),
    );
  }

  stop(): void {
    this.stopRepeating();
  }

  async sample(): Promise<void> {
    if (this.assigned.length === 0) return;
    const { admin, pool, consumerGroup, topic } = this.deps;
    const [highs, stored] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      readPartitionProgress(pool, consumerGroup, topic),
    ]);
    const watermarks = watermarksOf(highs);
    for (const partition of this.assigned) {
      const marks = watermarks.find((w) => w.partition === partition);
      if (!marks) continue;
      const progress = stored.get(partition);
      const labels = { topic, partition: String(partition) };
      this.lag.set(labels, lagOf(marks, progress?.nextOffset));
      if (progress?.newestEventMs !== undefined) this.newest.set(labels, progress.newestEventMs / 1000);
    }
  }
}
