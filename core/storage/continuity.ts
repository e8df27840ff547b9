/**
 * Where a fetched batch stands against the offset Postgres holds for its partition: the one place
 * that decides whether records may be missing between the two.
 *
 * Kafka offsets are not contiguous. Transaction markers take offsets, records of aborted
 * transactions are never delivered (the consumer reads `read_committed`), compaction and retention
 * remove records. None of that is ours to fetch again. A fetch that starts after the stored offset
 * for any other reason (the consumer resumed from a Kafka-committed offset ahead of Postgres, after a
 * replay or a database restore) must go back first, or the records between would be lost.
 *
 * The two are told apart by where the consumer itself sent the partition: once it has sent the
 * partition back to exactly the stored offset, Kafka's next visible record is the next one there
 * is, so whatever lies between is a gap Kafka made (and a fetch of a position Kafka no longer holds
 * resumes from the earliest it does, which is the same thing).
 */
export type Continuity =
  /** The fetch began at or before the stored offset: write, skipping records already stored. */
  | 'contiguous'
  /** The fetch began after the stored offset, which the consumer sought: the gap is Kafka's own. */
  | 'kafka-gap'
  /** The fetch began after the stored offset for another reason: seek back to it, write nothing. */
  | 'ahead';

export function continuityOf(stored: number, fetchedFrom: number, sentBackTo: number | undefined): Continuity {
  if (fetchedFrom <= stored) return 'contiguous';
  return sentBackTo === stored ? 'kafka-gap' : 'ahead';
}
