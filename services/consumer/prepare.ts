import type { KafkaMessage } from 'kafkajs';
import type { Extraction, OffsetEvent, RawRecord } from '../../core/events/extract';

export interface DeadLetter {
  message: KafkaMessage;
  reason: string;
}

export interface PreparedBatch {
  events: OffsetEvent[];
  deadLetters: DeadLetter[];
  skipped: number;
  /** Offset after the last message, valid or not. */
  nextOffset: number;
}

/** Turns raw Kafka messages into typed events and dead letters; never throws on bad input. */
export function prepareBatch(
  messages: readonly KafkaMessage[],
  extract: (record: RawRecord) => Extraction,
): PreparedBatch {
  const prepared: PreparedBatch = { events: [], deadLetters: [], skipped: 0, nextOffset: 0 };
  for (const message of messages) {
    let result: Extraction;
    try {
      result = extract({ value: message.value, timestamp: Number(message.timestamp) });
    } catch (error) {
      result = { kind: 'invalid', reason: `extraction failed: ${(error as Error).message}` };
    }
    if (result.kind === 'event') prepared.events.push({ offset: Number(message.offset), event: result.event });
    else if (result.kind === 'invalid') prepared.deadLetters.push({ message, reason: result.reason });
    else prepared.skipped++;
  }
  const last = messages[messages.length - 1];
  prepared.nextOffset = last ? Number(last.offset) + 1 : 0;
  return prepared;
}
