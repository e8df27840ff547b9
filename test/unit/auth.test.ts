import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { TokenFile, tokenMatches } from '../../core/http/auth';
import { createLogger } from '../../core/logger';

const digest = (t: string) => createHash('sha256').update(t).digest();

describe('tokenMatches', () => {
  const accepted = [digest('first'), digest('second')];
  it.each([
    ['first', true],
    ['second', true],
    ['firs', false],
    ['firstt', false],
    ['', false],
    ['FIRST', false],
  ])('%j → %s', (presented, expected) => {
    expect(tokenMatches(presented, accepted)).toBe(expected);
  });
  it('accepts nothing when no token is configured', () => {
    expect(tokenMatches('first', [])).toBe(false);
  });
});

describe('TokenFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-tokens-'));
  const log = createLogger('test', 'silent');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses to start from a file without tokens, naming the file', () => {
    const file = join(dir, 'empty');
    writeFileSync(file, '# only a comment\n\n');
    expect(() => new TokenFile(file, log)).toThrow(`AUTH_TOKENS_FILE ${file} holds no token`);
  });

  it('keeps one digest per non-empty, non-comment line, never the tokens themselves', () => {
    const file = join(dir, 'two');
    writeFileSync(file, ' alpha \n# note\nbeta\n');
    const tokens = new TokenFile(file, log).current();
    expect(tokens).toEqual([digest('alpha'), digest('beta')]);
  });
});
