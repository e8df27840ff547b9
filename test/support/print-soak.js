// Prints the `make soak` table from the rows the soak's tests wrote (test/support/soak.ts), and
// exits non-zero when a promised zero is not zero or an expected fault has no row (it failed).
const { readFileSync, existsSync } = require('node:fs');
const [file, ...expected] = process.argv.slice(2);
const rows = existsSync(file)
  ? readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  : [];
const faults = rows.filter((r) => r.kind === 'fault');
const inputs = rows.filter((r) => r.kind === 'input');
const pad = (cells, widths) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ');
let bad = false;
console.log(`\n${pad(['fault', 'events sent', 'lost', 'duplicated', 'recovered (s)'], [58, 12, 6, 11, 12])}`);
for (const r of faults) {
  // null: a fault of the control plane, with no events to lose (nothing to count).
  if ((r.lost !== null && r.lost !== 0) || (r.duplicated !== null && r.duplicated !== 0)) bad = true;
  console.log(
    pad([r.fault, r.events_sent, r.lost ?? '—', r.duplicated ?? '—', r.recovered_s ?? '—'], [58, 12, 6, 11, 12]),
  );
}
for (const name of expected) {
  if (!faults.some((r) => r.fault.startsWith(name)) && !inputs.some((r) => r.target.startsWith(name))) {
    bad = true;
    console.log(pad([name, 'FAILED (no row: its test did not pass)', '', '', ''], [58, 12, 6, 11, 12]));
  }
}
console.log(`\n${pad(['hostile input', 'inputs tried', '5xx', 'crashes'], [58, 13, 4, 7])}`);
for (const r of inputs) {
  if (r.server_errors !== 0 || r.crashes !== 0) bad = true;
  console.log(pad([r.target, r.inputs, r.server_errors, r.crashes], [58, 13, 4, 7]));
}
process.exit(bad ? 1 : 0);
