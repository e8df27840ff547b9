import { continuityOf } from '../../core/storage/continuity';
import { lagOf } from '../../core/progress';

describe('continuityOf', () => {
  it('writes a fetch that starts at or before the stored offset (the part before is filtered as a replay)', () => {
    expect(continuityOf(10, 10, undefined)).toBe('contiguous');
    expect(continuityOf(10, 3, undefined)).toBe('contiguous');
  });

  it('sends a fetch that starts ahead back to the stored offset, unless the consumer just sent it there', () => {
    expect(continuityOf(10, 11, undefined)).toBe('ahead');
    expect(continuityOf(10, 11, 7)).toBe('ahead');
    // Sought to 10, and Kafka's next visible record was at 11 (a marker, aborted or compacted record at 10).
    expect(continuityOf(10, 11, 10)).toBe('kafka-gap');
  });
});

describe('lagOf', () => {
  it('counts from the stored offset, or from the earliest record Kafka still holds', () => {
    expect(lagOf({ partition: 0, low: 0, high: 100 }, 40)).toBe(60);
    expect(lagOf({ partition: 0, low: 0, high: 100 }, undefined)).toBe(100);
    expect(lagOf({ partition: 0, low: 70, high: 100 }, 40)).toBe(30);
    expect(lagOf({ partition: 0, low: 0, high: 100 }, 100)).toBe(0);
  });
});
