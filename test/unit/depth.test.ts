import { jsonDepth } from '../../core/events/depth';

describe('jsonDepth', () => {
  it.each([
    ['1', 0],
    ['"[[[{"', 0],
    ['{"a":[1,{"b":[]}]}', 4],
    ['["\\"[", ["\\\\"], []]', 2],
    ['[]{}[[]]', 2],
  ])('%s nests %i deep', (text, depth) => {
    expect(jsonDepth(text)).toBe(depth);
  });

  it('agrees with JSON.parse on what it parses', () => {
    const value = { a: [1, [2, [3, { b: '[{' }]]], c: {} };
    expect(jsonDepth(JSON.stringify(value))).toBe(5);
  });

  it('stops counting once past the limit, without recursion', () => {
    const deep = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(jsonDepth(deep, 64)).toBe(65);
    expect(jsonDepth(deep)).toBe(1_000_000);
  });
});
