import type { Producer } from 'kafkajs';
import type { DeadLetter } from './prepare';

export const DLQ_HEADERS = {
  reason: 'fs-error-reason',
  group: 'fs-feature-group',
  topic: 'fs-source-topic',
  partition: 'fs-source-partition',
  offset: 'fs-source-offset',
  /** Set when Postgres refused the record: its SQLSTATE (the reason holds its message). */
  sqlstate: 'fs-error-sqlstate',
} as const;

export function deadLetterTopicFor(
  sourceTopic: string,
  group: { namespace: string; name: string },
  configured?: string,
): string {
  return configured ?? `featurestore.dlq.${group.namespace}.${group.name}`.slice(0, 249);
}

/** Sends invalid records, untouched, to the dead-letter topic with why and where in headers. */
export async function publishDeadLetters(
  producer: Producer,
  dlqTopic: string,
  source: { group: string; topic: string; partition: number },
  letters: readonly (DeadLetter & { sqlstate?: string })[],
): Promise<void> {
  if (letters.length === 0) return;
  await producer.send({
    topic: dlqTopic,
    acks: -1,
    messages: letters.map(({ message, reason, sqlstate }) => ({
      key: message.key,
      value: message.value,
      timestamp: message.timestamp,
      headers: {
        [DLQ_HEADERS.reason]: reason,
        [DLQ_HEADERS.group]: source.group,
        [DLQ_HEADERS.topic]: source.topic,
        [DLQ_HEADERS.partition]: String(source.partition),
        [DLQ_HEADERS.offset]: message.offset,
        ...(sqlstate ? { [DLQ_HEADERS.sqlstate]: sqlstate } : {}),
      },
    })),
  });
}
