import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { RequestHandler } from 'express';
import type { Logger } from '../logger';
import { HttpError } from './errors';

/** Paths probes and scrapers reach without a token (kubelet and Prometheus carry none). */
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/health', '/metrics']);

/** Re-read the file at most this often: a rotated Secret shows up within seconds, not per request. */
const RELOAD_CHECK_MS = 5_000;

const digest = (token: string | Buffer): Buffer => createHash('sha256').update(token).digest();

/**
 * Bearer tokens from a file, one per line (a mounted Secret key). Several lines allow rotation:
 * add the new token, move clients, remove the old one. Kubernetes swaps the mounted file when the
 * Secret changes; the file is re-read when its mtime moves. Only SHA-256 digests stay in memory.
 */
export class TokenFile {
  private digests: Buffer[] = [];
  private mtimeMs = -1;
  private checkedAt = 0;

  constructor(
    readonly path: string,
    private readonly log: Logger,
  ) {
    this.load();
    if (this.digests.length === 0)
      throw new Error(`AUTH_TOKENS_FILE ${path} holds no token: refusing to start with auth on and nothing accepted`);
  }

  current(): readonly Buffer[] {
    const now = Date.now();
    if (now - this.checkedAt >= RELOAD_CHECK_MS) {
      this.checkedAt = now;
      try {
        if (statSync(this.path).mtimeMs !== this.mtimeMs) this.load();
      } catch (error) {
        // Keep the last good set rather than lock everyone out during a Secret swap.
        this.log.warn({ err: error, path: this.path }, 'auth tokens file unreadable; keeping the tokens loaded before');
      }
    }
    return this.digests;
  }

  private load(): void {
    const stat = statSync(this.path);
    const tokens = readFileSync(this.path, 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length > 0 && !line.startsWith('#'));
    const digests = tokens.map(digest);
    if (digests.length === 0 && this.digests.length > 0) {
      this.log.warn({ path: this.path }, 'auth tokens file is empty now; keeping the tokens loaded before');
      return;
    }
    this.digests = digests;
    this.mtimeMs = stat.mtimeMs;
    this.log.info({ path: this.path, tokens: digests.length }, 'auth tokens loaded');
  }
}

/** True when `presented` equals one of the tokens; time does not depend on which, or on where it differs. */
export function tokenMatches(presented: string, accepted: readonly Buffer[]): boolean {
  const candidate = digest(presented);
  let match = false;
  for (const token of accepted) match = timingSafeEqual(candidate, token) || match;
  return match;
}

/**
 * Requires `Authorization: Bearer <token>` on everything but the probe and metrics paths. A
 * missing, malformed or wrong token gets the same 401, so a caller learns nothing about which.
 */
export function bearerAuth(tokens: () => readonly Buffer[]): RequestHandler {
  return (req, _res, next) => {
    if (OPEN_PATHS.has(req.path)) {
      next();
      return;
    }
    const header = req.get('authorization') ?? '';
    const match = /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(header);
    if (match && tokenMatches(match[1]!, tokens())) {
      next();
      return;
    }
    next(
      new HttpError(401, 'E_UNAUTHORIZED', 'a valid bearer token is required', undefined, {
        'WWW-Authenticate': 'Bearer realm="feature-store"',
      }),
    );
  };
}
