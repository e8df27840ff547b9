/** Five digits or capitals: the codes of Postgres's appendix A. Node's own codes (ECONNRESET) are not. */
const SQLSTATE = /^[0-9A-Z]{5}$/;

export const isSqlstate = (code: string | undefined): code is string => code !== undefined && SQLSTATE.test(code);

/** The SQLSTATE of an error Postgres raised (pg's `code`), or undefined for any other error. */
export function sqlstateOf(error: unknown): string | undefined {
  const { code } = (error ?? {}) as { code?: unknown };
  return typeof code === 'string' && isSqlstate(code) ? code : undefined;
}
