import type { Consumer, EachBatchPayload, Producer } from 'kafkajs';
import type { Pool } from 'pg';
import { Counter, Histogram, type Registry } from 'prom-client';
import { compileExtractor } from '../../core/events/extract';
import { groupId } from '../../core/featuregroup/schema';
import { consumerGroupFor } from '../../core/kafka';
import type { Logger } from '../../core/logger';
import { retryWithBackoff } from '../../core/retry';
import type { RegisteredGroup } from '../../core/storage/registry';
import {
  advanceOverInvisible,
  FencedError,
  GroupWriter,
  readStoredOffsets,
  recordPartitionError,
  type RejectedEvent,
} from '../../core/storage/writer';
import { sqlstateOf } from '../../core/storage/sqlstate';
import { PartitionPositions } from './positions';
import type { ProgressReporter } from './progress';
import { deadLetterTopicFor, publishDeadLetters } from './dead-letters';
import { TileWriter } from '../../core/aggregates/store';
import { HistoryWriter } from '../../core/history/store';
import { prepareBatch } from './prepare';

export interface RunnerDeps {
  group: RegisteredGroup;
  consumer: Consumer;
  producer: Producer;
  pool: Pool;
  registry: Registry;
  log: Logger;
  partitionsConcurrently: number;
  /** The group was replayed under this consumer: its process must start over. */
  onFenced: (error: FencedError) => void;
  /** Lag and freshness gauges of the partitions this replica holds. */
  progress?: ProgressReporter;
}

/**
 * Kafka → Postgres for one FeatureGroup. Per chunk of a fetched batch: dead-letter the invalid
 * records, write values and next offset in one transaction, then commit to Kafka. Postgres is the
 * source of truth for offsets: it is where the consumer resumes, and what filters a replay.
 */
export class GroupRunner {
  private readonly writer: GroupWriter;
  private readonly extract: ReturnType<typeof compileExtractor>;
  private readonly consumerGroup: string;
  private readonly dlqTopic: string;
  private readonly events: Counter<'outcome'>;
  private readonly batchSeconds: Histogram;
  private readonly retries: Counter;
  private readonly positions = new PartitionPositions();
  /** Offset moves over invisible records in flight, per partition: a batch waits for its partition's. */
  private readonly advancing = new Map<number, Promise<void>>();
  private stopping = false;

  constructor(private readonly deps: RunnerDeps) {
    const { group, registry } = deps;
    const fence = { namespace: group.ref.namespace, name: group.ref.name, epoch: group.replayEpoch };
    this.writer = new GroupWriter(group.group, new TileWriter(group.group), new HistoryWriter(group.group), fence);
    this.extract = compileExtractor(group.group);
    this.consumerGroup = consumerGroupFor(group.ref);
    this.dlqTopic = deadLetterTopicFor(group.spec.source.topic, group.ref, group.spec.source.deadLetterTopic);
    this.events = new Counter({
      name: 'featurestore_consumer_events_total',
      help: 'Records consumed, by outcome: applied, replayed (already stored), skipped (filter), dead_lettered',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.batchSeconds = new Histogram({
      name: 'featurestore_consumer_batch_seconds',
      help: 'Time to write one batch and its offsets',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.retries = new Counter({
      name: 'featurestore_consumer_retries_total',
      help: 'Batch attempts that failed and were retried',
      registers: [registry],
    });
  }

  async start(): Promise<void> {
    const { consumer, group, log } = this.deps;
    const topic = group.spec.source.topic;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const partitions = payload.memberAssignment[topic] ?? [];
      log.info({ topic, partitions }, 'partitions assigned');
      this.positions.reset();
      this.deps.progress?.assign(partitions);
      void this.seekToStored(partitions).catch((error: unknown) =>
        log.warn({ err: error }, 'seek to stored offsets failed; replay will be filtered'),
      );
    });
    // kafkajs skips by itself a fetch that held only transaction markers or aborted records, and
    // never hands it to eachBatch: move the stored offset over it, or lag never reaches zero.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize !== 0 || payload.topic !== topic) return;
      // One after another per partition: each starts from where the one before left the offset
      // (two marker-only fetches in a row are normal at the end of an aborted transaction).
      const before = this.advancing.get(payload.partition) ?? Promise.resolve();
      const advancing = before
        .then(() => this.advanceOverInvisible(payload.partition, Number(payload.lastOffset) + 1))
        .catch((error: unknown) =>
          log.warn(
            { err: error, partition: payload.partition },
            'could not move the stored offset over transaction markers; a later batch or restart will',
          ),
        );
      this.advancing.set(payload.partition, advancing);
      void advancing.finally(() => {
        if (this.advancing.get(payload.partition) === advancing) this.advancing.delete(payload.partition);
      });
    });
    await consumer.connect();
    // The source topic may not exist yet (created on first produce): wait for it, do not crash.
    await retryWithBackoff(
      () => consumer.subscribe({ topic, fromBeginning: true }),
      () => !this.stopping,
      (error, attempt) => log.warn({ err: error, topic, attempt }, 'source topic not available yet; waiting'),
      { initialMs: 500, maxMs: 10_000 },
    );
    if (this.stopping) return;
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.deps.partitionsConcurrently,
      eachBatch: (payload) => this.handleBatch(payload),
    });
    log.info({ group: groupId(group.ref), topic, consumerGroup: this.consumerGroup, dlq: this.dlqTopic }, 'consuming');
  }

  /** Finish the chunk in flight (its commit included), then leave the consumer group. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.deps.consumer.disconnect();
  }

  private async seekToStored(partitions: number[]): Promise<void> {
    const { group, pool, log } = this.deps;
    const topic = group.spec.source.topic;
    const stored = await readStoredOffsets(pool, this.consumerGroup, topic);
    for (const partition of partitions) {
      const offset = stored.get(partition);
      if (offset === undefined) continue;
      this.seek(partition, offset);
      log.info({ topic, partition, offset: offset.toString() }, 'resuming from offset stored in Postgres');
    }
  }

  private seek(partition: number, offset: number): void {
    this.deps.consumer.seek({ topic: this.deps.group.spec.source.topic, partition, offset: offset.toString() });
    this.positions.soughtTo(partition, offset);
  }

  private async advanceOverInvisible(partition: number, to: number): Promise<void> {
    const from = this.positions.position(partition);
    if (from === undefined || to <= from) return;
    const moved = await advanceOverInvisible(
      this.deps.pool,
      this.consumerGroup,
      this.deps.group.spec.source.topic,
      partition,
      from,
      to,
    );
    if (moved) this.positions.wrote(partition, to);
  }

  // kafkajs hands these as closures bound to the batch, not methods that need their object.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  private async handleBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { group, pool, producer, consumer, log } = this.deps;
    const chunkSize = group.spec.consumer.batchSize;
    const source = { group: groupId(group.ref), topic: batch.topic, partition: batch.partition };
    const live = (): boolean => isRunning() && !isStale();
    // The fetch before this one may have held only markers: let its offset move land first, so
    // this batch does not take the stored offset for one behind its fetch.
    await this.advancing.get(batch.partition);
    if (!live()) return;
    // Read right after the staleness check, with no await between: a seek asked for later must not
    // vouch for a batch fetched before it.
    const sentBackTo = this.positions.sentBackTo(batch.partition);
    let fetchedFrom = fetchStart(batch);

    for (let start = 0; start < batch.messages.length; start += chunkSize) {
      if (this.stopping && start > 0) return;
      if (!live()) return;
      const chunk = batch.messages.slice(start, start + chunkSize);
      const prepared = prepareBatch(chunk, this.extract);
      // The fetch may end in records nobody sees (a commit marker after the last record): the last
      // chunk covers them, so the stored offset reaches the high watermark.
      const lastChunk = start + chunkSize >= batch.messages.length;
      const nextOffset = lastChunk
        ? Math.max(prepared.nextOffset, Number(batch.lastOffset()) + 1)
        : prepared.nextOffset;
      let deadLettersSent = false;
      const timer = this.batchSeconds.startTimer();
      let fenced: FencedError | undefined;
      const refusedByPostgres = async (rejected: readonly RejectedEvent[]): Promise<void> => {
        const byOffset = new Map(chunk.map((m) => [Number(m.offset), m]));
        const letters = rejected.map((r) => ({
          message: byOffset.get(r.offset)!,
          reason: `Postgres refused the record: ${r.message}`,
          sqlstate: r.sqlstate,
        }));
        await publishDeadLetters(producer, this.dlqTopic, source, letters);
      };
      const outcome = await retryWithBackoff(
        async () => {
          if (!deadLettersSent) {
            await publishDeadLetters(producer, this.dlqTopic, source, prepared.deadLetters);
            deadLettersSent = true;
          }
          try {
            return await this.writer.write(
              pool,
              {
                consumerGroup: this.consumerGroup,
                topic: batch.topic,
                partition: batch.partition,
                fetchedFrom,
                sentBackTo,
                nextOffset,
                events: prepared.events,
              },
              refusedByPostgres,
            );
          } catch (error) {
            if (error instanceof FencedError) fenced = error;
            throw error;
          }
        },
        () => fenced === undefined && live() && !this.stopping,
        (error, attempt, delayMs) => {
          this.retries.inc();
          log.warn(
            { err: error, attempt, delayMs, partition: batch.partition },
            'batch failed; retrying, nothing committed',
          );
          recordPartitionError(pool, this.consumerGroup, batch.topic, batch.partition, recordedText(error)).catch(
            () => undefined,
          );
          heartbeat().catch(() => undefined);
        },
      );
      if (fenced) {
        this.deps.onFenced(fenced);
        return;
      }
      if (outcome === undefined) return;
      if (outcome.resumeFrom !== undefined) {
        // Fetched from a Kafka-committed offset ahead of Postgres (after a replay or a database
        // restore): go back to where Postgres is; nothing of this batch was written.
        this.seek(batch.partition, outcome.resumeFrom);
        log.info(
          { partition: batch.partition, offset: outcome.resumeFrom, fetchedFrom },
          'fetched ahead of the offset stored in Postgres; seeking back',
        );
        return;
      }
      if (start === 0 && sentBackTo !== undefined && fetchedFrom > sentBackTo) {
        log.info(
          { partition: batch.partition, from: sentBackTo, to: fetchedFrom },
          'offsets without visible records skipped (transaction markers, aborted, compacted or expired records)',
        );
      }
      timer();
      this.events.inc({ outcome: 'applied' }, outcome.applied);
      this.events.inc({ outcome: 'replayed' }, outcome.replayed);
      this.events.inc({ outcome: 'skipped' }, prepared.skipped);
      this.events.inc({ outcome: 'dead_lettered' }, prepared.deadLetters.length + outcome.rejected.length);
      this.positions.wrote(batch.partition, nextOffset);
      fetchedFrom = nextOffset;

      resolveOffset(String(nextOffset - 1));
      // Postgres already holds this offset; a failed Kafka commit only means a filtered replay.
      await consumer
        .commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: nextOffset.toString() }])
        .catch((error: unknown) =>
          log.warn({ err: error }, 'kafka offset commit failed; postgres offsets stay authoritative'),
        );
      await heartbeat().catch(() => undefined);
    }
  }
}

/** Where the fetch that delivered the batch began: kafkajs keeps it on the batch, untyped. */
function fetchStart(batch: EachBatchPayload['batch']): number {
  const fetched = (batch as { fetchedOffset?: string }).fetchedOffset;
  return Number(fetched ?? batch.firstOffset() ?? batch.lastOffset());
}

/** What a partition's last error is recorded as: `<SQLSTATE>: <message>` when Postgres gave one. */
function recordedText(error: unknown): string {
  const { message } = (error ?? {}) as { message?: unknown };
  const text = typeof message === 'string' ? message : String(error);
  const sqlstate = sqlstateOf(error);
  return sqlstate ? `${sqlstate}: ${text}` : text;
}
