import { CompressionTypes, type Producer } from 'kafkajs';

/** A record ready for Kafka: its key (the entity id), its JSON text, and optionally its timestamp (epoch ms). */
export interface OutgoingEvent {
  key: string | null;
  value: string;
  timestamp?: number;
}

/** Hands events to Kafka; resolves only when every replica in sync has them (acks=all). Ingest and serving's writes share it. */
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
      // A producer not connected yet (or any more) connects first: serving connects on its first write.
      if (!connected) await producer.connect();
      await producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.None,
        messages: events.map((e) =>
          e.timestamp === undefined
            ? { key: e.key, value: e.value }
            : { key: e.key, value: e.value, timestamp: String(e.timestamp) },
        ),
      });
    },
    ready: () => connected,
  };
}
