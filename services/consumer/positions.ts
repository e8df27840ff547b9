/**
 * What this consumer knows of its own fetch position per partition, from what it did itself: where
 * it sent the partition back to (a seek to the offset stored in Postgres) and where its last written
 * batch ended. Forgotten on every rebalance, since another member may have moved the partition on.
 * The decisions made from it live in core/storage/continuity.ts.
 */
export class PartitionPositions {
  private readonly sentBack = new Map<number, number>();
  private readonly positions = new Map<number, number>();

  reset(): void {
    this.sentBack.clear();
    this.positions.clear();
  }

  /** The consumer sought the partition to `offset`, read from Postgres. */
  soughtTo(partition: number, offset: number): void {
    this.sentBack.set(partition, offset);
    this.positions.set(partition, offset);
  }

  /** A batch ending before `nextOffset` was stored: Kafka fetches on from there. */
  wrote(partition: number, nextOffset: number): void {
    this.sentBack.delete(partition);
    this.positions.set(partition, nextOffset);
  }

  sentBackTo(partition: number): number | undefined {
    return this.sentBack.get(partition);
  }

  /** Where Kafka fetches the partition from next, as far as this consumer knows. */
  position(partition: number): number | undefined {
    return this.positions.get(partition);
  }
}
