import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stdout. Connection strings and tokens are redacted wherever they
 * appear as fields, so a careless `log.info({ config })` cannot leak a secret.
 */
export function createLogger(component: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name: component,
    level,
    base: { component },
    redact: {
      paths: [
        'DATABASE_URL',
        'DATABASE_READ_URL',
        '*.DATABASE_URL',
        '*.DATABASE_READ_URL',
        'password',
        '*.password',
        'token',
        '*.token',
        'authorization',
        '*.authorization',
        'headers.authorization',
      ],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** Removes the password from a postgres URL for log lines and error messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:[redacted]@');
}
