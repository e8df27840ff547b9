/**
 * Rows for the `make soak` table. A test appends its row only after its assertions held, so a
 * missing row is a failed (or not run) fault; the table says so. Without SOAK_REPORT, nothing is
 * written.
 */
import { appendFileSync } from 'node:fs';

export type SoakRow =
  | {
      kind: 'fault';
      fault: string;
      events_sent: number;
      lost: number | null;
      duplicated: number | null;
      recovered_s: number | null;
    }
  | { kind: 'input'; target: string; inputs: number; server_errors: number; crashes: number };

export function recordSoak(row: SoakRow): void {
  const file = process.env.SOAK_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify(row)}\n`);
}
