import { Kafka, logLevel, type Admin, type LogEntry } from 'kafkajs';
import type { Logger } from './logger';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** A kafkajs client whose logs go through pino. */
export function createKafka(brokers: string[], clientId: string, log: Logger): Kafka {
  const kafkaLog = log.child({ lib: 'kafkajs' });
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...extra } = entry.log;
      kafkaLog[LEVELS[entry.level] ?? 'info']({ ...extra, namespace: entry.namespace }, message);
    },
    retry: { initialRetryTime: 100, maxRetryTime: 5_000, retries: 8 },
  });
}

/** The Kafka consumer group of a FeatureGroup's consumers; its replicas share it. */
export function consumerGroupFor(ref: { namespace: string; name: string }): string {
  return `featurestore.${ref.namespace}.${ref.name}`;
}

/** Each partition's high watermark: the offset the next record will get. */
export async function highWatermarks(admin: Admin, topic: string): Promise<Map<number, number>> {
  const watermarks = await admin.fetchTopicOffsets(topic);
  return new Map(watermarks.map((w) => [w.partition, Number(w.high)]));
}

/**
 * Where a replay starts in each partition of `topic`: its earliest record, or the first record at
 * or after a timestamp (the end of the partition when there is none).
 */
export async function replayStartOffsets(
  admin: Admin,
  topic: string,
  from: 'earliest' | number,
): Promise<Map<number, number>> {
  const watermarks = await admin.fetchTopicOffsets(topic);
  if (from === 'earliest') return new Map(watermarks.map((w) => [w.partition, Number(w.low)]));
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, from);
  const high = new Map(watermarks.map((w) => [w.partition, Number(w.high)]));
  return new Map(
    byTime.map((o) => [o.partition, Number(o.offset) >= 0 ? Number(o.offset) : (high.get(o.partition) ?? 0)]),
  );
}
