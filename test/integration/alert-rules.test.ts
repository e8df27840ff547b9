/**
 * The chart's PrometheusRule alerts with the real promtool: the rule group `helm template` renders
 * (what ships, not a copy of it) passes `promtool check rules`, and `promtool test rules` shows each
 * alert firing once its condition has held for its `for:`, and not firing where the condition does
 * not hold or holds too briefly (test/support/fixtures/alert-rules-test.yaml). Thresholds set in
 * values reach the expressions. Needs the built helm and promtool (test/servers/tools.sh), no server.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { runTool } from '../support/kube';

const root = join(__dirname, '..', '..');
const chart = join(root, 'charts/feature-store');
const UNIT_TESTS = join(root, 'test/support/fixtures/alert-rules-test.yaml');
/** The rules file the unit tests' rule_files name, written next to them. */
const RULES_FILE = 'feature-store-rules.yaml';
const ALERTS = [
  'FeatureStoreConsumerLagHigh',
  'FeatureStorePartitionStalled',
  'FeatureStoreDeadLetters',
  'FeatureStoreServingErrors',
];

const toolPath = (tool: string): string =>
  execFileSync('bash', [join(root, 'test/servers/tools.sh'), 'path', tool], { encoding: 'utf8' }).trim();

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: Rule[];
}
interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { groups?: RuleGroup[] };
}
interface AlertTestCase {
  eval_time: string;
  alertname: string;
  exp_alerts?: unknown[] | null;
}
interface UnitTestFile {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: AlertTestCase[] }[];
}

describe('PrometheusRule alerts (promtool)', () => {
  const work = mkdtempSync(join(tmpdir(), 'fs-alerts-'));
  let helm: string;
  let promtool: string;

  const render = async (args: string[]): Promise<Manifest[]> => {
    const rendered = await runTool(helm, [
      'template',
      'fs',
      chart,
      '--namespace',
      'feature-store',
      '-f',
      join(chart, 'ci/default-values.yaml'),
      ...args,
    ]);
    if (rendered.code !== 0)
      throw new Error(`helm template ${args.join(' ')} failed (${rendered.code}): ${rendered.stderr}`);
    return parseAllDocuments(rendered.stdout)
      .map((d) => d.toJSON() as Manifest | null)
      .filter((d): d is Manifest => d !== null);
  };
  const prometheusRule = async (args: string[]): Promise<Manifest> => {
    const rules = (await render(['--set', 'metrics.prometheusRule.enabled=true', ...args])).filter(
      (o) => o.kind === 'PrometheusRule',
    );
    expect(rules).toHaveLength(1);
    return rules[0]!;
  };
  /** Writes the rule groups as a Prometheus rules file in a fresh directory; returns the directory. */
  const rulesDir = (name: string, groups: RuleGroup[]): string => {
    const dir = join(work, name);
    mkdirSync(dir);
    writeFileSync(join(dir, RULES_FILE), stringify({ groups }, { lineWidth: 0 }));
    return dir;
  };
  const promtoolOk = async (args: string[]): Promise<string> => {
    const result = await runTool(promtool, args);
    const output = `${result.stdout}${result.stderr}`;
    if (result.code !== 0) throw new Error(`promtool ${args.join(' ')} failed (${result.code}):\n${output}`);
    return output;
  };

  let shipped: Manifest;
  let defaults: string;

  beforeAll(async () => {
    helm = toolPath('helm');
    promtool = toolPath('promtool');
    shipped = await prometheusRule([]);
    defaults = rulesDir('defaults', shipped.spec?.groups ?? []);
  });

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('is rendered only when metrics.prometheusRule.enabled', async () => {
    expect((await render([])).map((o) => o.kind)).not.toContain('PrometheusRule');
    expect(shipped.metadata).toMatchObject({ name: 'fs-feature-store', namespace: 'feature-store' });
  });

  it('is one rule group, feature-store, whose alerts each have a severity, a summary, a description and a for:', () => {
    const groups = shipped.spec?.groups ?? [];
    expect(groups.map((g) => g.name)).toEqual(['feature-store']);
    const rules = groups[0]!.rules;
    expect(rules.map((r) => r.alert)).toEqual(ALERTS);
    for (const rule of rules) {
      expect({ alert: rule.alert, severity: rule.labels?.severity }).toEqual({
        alert: rule.alert,
        severity: expect.stringMatching(/^(warning|critical)$/),
      });
      expect({ alert: rule.alert, for: rule.for }).toEqual({
        alert: rule.alert,
        for: expect.stringMatching(/^[0-9]+m$/),
      });
      expect(rule.annotations?.summary).toMatch(/\$labels\.(namespace|group)/);
      expect(rule.annotations?.description).toMatch(/\$labels\.(namespace|group)/);
    }
  });

  it('passes promtool check rules, lint warnings fatal', async () => {
    const output = await promtoolOk(['check', 'rules', '--lint=all', '--lint-fatal', join(defaults, RULES_FILE)]);
    expect(output).toMatch(new RegExp(`SUCCESS: ${ALERTS.length} rules found`));
  });

  it('promtool test rules: each alert fires once its condition has held for its for:, and not where it does not', async () => {
    // The unit tests cover every shipped alert both ways: firing at some time, silent at another.
    const unitTests = parse(readFileSync(UNIT_TESTS, 'utf8')) as UnitTestFile;
    expect(unitTests.rule_files).toEqual([RULES_FILE]);
    const cases = unitTests.tests.flatMap((t) => t.alert_rule_test ?? []);
    const firing = new Set(cases.filter((c) => (c.exp_alerts ?? []).length > 0).map((c) => c.alertname));
    const silent = new Set(cases.filter((c) => (c.exp_alerts ?? []).length === 0).map((c) => c.alertname));
    expect([...firing].sort()).toEqual([...ALERTS].sort());
    expect([...silent].sort()).toEqual([...ALERTS].sort());

    copyFileSync(UNIT_TESTS, join(defaults, basename(UNIT_TESTS)));
    const output = await promtoolOk(['test', 'rules', join(defaults, basename(UNIT_TESTS))]);
    expect(output).toMatch(/SUCCESS/);
    expect(output).not.toMatch(/FAILED/);
  });

  it('takes its thresholds and labels from values', async () => {
    // A values file: `--set` would hand the fractions to the schema as strings.
    const values = join(work, 'overrides-values.yaml');
    writeFileSync(
      values,
      stringify({
        metrics: {
          prometheusRule: {
            labels: { release: 'kube-prometheus-stack' },
            thresholds: { lagRecords: 500, deadLetterRate: 1, servingErrorRatio: 0.05 },
          },
        },
      }),
    );
    const rule = await prometheusRule(['-f', values]);
    expect(rule.metadata.labels?.release).toBe('kube-prometheus-stack');
    const groups = rule.spec?.groups ?? [];
    const description = (alert: string) =>
      groups.flatMap((g) => g.rules).find((r) => r.alert === alert)?.annotations?.description;
    expect(description('FeatureStoreConsumerLagHigh')).toMatch(/more than 500 for 10 minutes/);
    expect(description('FeatureStoreDeadLetters')).toMatch(/more than 1 for 5 minutes/);
    expect(description('FeatureStoreServingErrors')).toMatch(/more than 0\.05 for 5 minutes/);

    // What promtool evaluates: 600 records behind now fires; 0.05 dead letters/s and 3 % of 5xx,
    // which fire at the defaults, do not. Annotations are left out (promtool compares them whole).
    const dir = rulesDir(
      'overrides',
      groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _annotations, ...r }) => r) })),
    );
    const serving = (status: string, perMinute: number) => ({
      series: `featurestore_http_request_duration_seconds_count{namespace="feature-store", component="serving", method="GET", route="/features/:id", status="${status}"}`,
      values: `0+${perMinute}x20`,
    });
    writeFileSync(
      join(dir, 'tests.yaml'),
      stringify({
        rule_files: [RULES_FILE],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              {
                series: 'featurestore_feature_group_lag_records{namespace="ml", name="user-activity"}',
                values: '600x15',
              },
              {
                series:
                  'featurestore_consumer_events_total{group="ml/user-activity", outcome="dead_lettered", component="consumer"}',
                values: '0+3x20',
              },
              serving('200', 970),
              serving('503', 30),
            ],
            alert_rule_test: [
              {
                eval_time: '15m',
                alertname: 'FeatureStoreConsumerLagHigh',
                exp_alerts: [{ exp_labels: { severity: 'warning', namespace: 'ml', name: 'user-activity' } }],
              },
              { eval_time: '15m', alertname: 'FeatureStoreDeadLetters', exp_alerts: [] },
              { eval_time: '15m', alertname: 'FeatureStoreServingErrors', exp_alerts: [] },
            ],
          },
        ],
      }),
    );
    expect(await promtoolOk(['test', 'rules', join(dir, 'tests.yaml')])).toMatch(/SUCCESS/);
  });

  it.each([
    ['a negative lag threshold', 'metrics.prometheusRule.thresholds.lagRecords=-1', /lagRecords/],
    ['an error ratio of 1 or more', 'metrics.prometheusRule.thresholds.servingErrorRatio=1', /servingErrorRatio/],
    ['a misspelt threshold', 'metrics.prometheusRule.thresholds.lagRecord=5', /lagRecord/],
  ])('refuses %s with a message naming the value', async (_label, value, message) => {
    const rendered = await runTool(helm, [
      'template',
      'fs',
      chart,
      '-f',
      join(chart, 'ci/default-values.yaml'),
      '--set',
      'metrics.prometheusRule.enabled=true',
      '--set',
      value,
    ]);
    expect(rendered.code).not.toBe(0);
    expect(rendered.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(rendered.stderr).toMatch(message);
  });
});
