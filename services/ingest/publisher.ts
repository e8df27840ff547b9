import { CompressionTypes, type Producer } from 'kafkajs';
import type { OutgoingEvent } from './events';

/** Hands events to Kafka; resolves only when every replica in sync has them (acks=all). */
export interface Publisher {
  publish(topic: string, events: readonly OutgoingEvent[]): Promise<void>;
  ready(): boolean;
}

export function kafkaPublisher(producer: Producer): Publisher {
  let connected = false;
  producer.on(producer.events.CONNECT, () => (connected = true));
  producer.on(producer.events.DISCONNECT, () => (connected = false));
  return {
    async publish(topic, events) {
      await producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.None,
        messages: events.map((e) => ({ key: e.key, value: e.value })),
      });
    },
    ready: () => connected,
  };
}
