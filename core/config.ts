import { z } from 'zod';

/** Variables every component understands. Each component extends this with its own. */
export const baseEnv = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export const databaseUrl = z
  .string({ error: 'is required (postgres://user:password@host:port/db)' })
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// URL');

export const kafkaBrokers = z
  .string({ error: 'is required (host:port[,host:port...])' })
  .transform((v) =>
    v
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
  )
  .refine(
    (list) => list.length > 0 && list.every((b) => /^[^\s:]+:\d{1,5}$/.test(b)),
    'must be host:port[,host:port...]',
  );

/** Bearer tokens, one per line (a mounted Secret key); unset means no auth. */
export const authTokensFile = z.string().min(1).optional();

export const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

export class ConfigError extends Error {
  readonly code = 'E_CONFIG';
}

/** Validates the environment at start-up; the error names every variable that is wrong. */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'} ${i.message}`);
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}
