/**
 * Incremental reconciles: with 200 groups Ready, a full resync (every group reconciled again)
 * runs no DDL, no grants and no ALTER ROLE. Counted two ways: the operator's own
 * featurestore_operator_store_applies_total, and the utility statements Postgres ran
 * (pg_stat_statements). A spec change afterwards applies again, for that group only.
 */
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { Pool } from 'pg';
import { testPool, uniqueName } from '../support/platform';
import { installFeatureGroupCrd, kubeConfig, kubectl, kubectlOk } from '../support/kube';
import { isReadyNow, listFeatureGroups } from '../support/featuregroups';
import { eventually, requireEnv, startService, type RunningService } from '../support/services';

const GROUPS = 200;

describe('a resync of 200 Ready groups', () => {
  const namespace = uniqueName('resync');
  let pool: Pool;
  let custom: CustomObjectsApi;
  let operator: RunningService;

  const manifest = (index: number, features = ['last_action']) =>
    JSON.stringify({
      apiVersion: 'featurestore.dev/v1alpha1',
      kind: 'FeatureGroup',
      metadata: { name: `g-${index}`, namespace },
      spec: {
        entity: { name: 'user', keyField: 'entity_id' },
        source: { topic: `${namespace}-${index}` },
        features: features.map((name) => ({ name, type: 'string', from: name })),
        consumer: { replicas: 0 },
        deletionPolicy: 'Delete',
      },
    });
  const readyCount = async () => (await listFeatureGroups(custom, namespace)).filter(isReadyNow).length;
  /** Utility statements that change schema, grants or roles, as Postgres counted them. */
  const ddlStatements = async () =>
    Number(
      (
        await pool.query<{ n: string | null }>(
          `SELECT sum(calls) AS n FROM pg_stat_statements WHERE query ~* '^\\s*(CREATE|ALTER|GRANT|REVOKE|DROP|COMMENT)\\s'`,
        )
      ).rows[0]!.n ?? 0,
    );

  beforeAll(async () => {
    pool = testPool();
    await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const kube = kubeConfig();
    custom = kube.makeApiClient(CustomObjectsApi);
    await installFeatureGroupCrd();
    await kube.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
    operator = await startService(
      'operator',
      {
        KUBECONFIG: process.env.KUBECONFIG!,
        DATABASE_URL: requireEnv('DATABASE_URL'),
        KAFKA_BROKERS: requireEnv('KAFKA_BROKERS'),
        LEADER_ELECTION: 'false',
        WATCH_NAMESPACES: namespace,
        RESYNC_SECONDS: '5',
        LOG_LEVEL: 'warn',
      },
      `${namespace}-operator`,
    );
    await operator.waitReady();
  });

  afterAll(async () => {
    await kubectl(['delete', 'featuregroups', '--all', '-n', namespace, '--wait=true', '--timeout=180s']);
    await operator?.stop();
    await pool?.end();
  });

  it('runs no DDL, no grants and no ALTER ROLE', async () => {
    await kubectlOk(['apply', '-f', '-'], Array.from({ length: GROUPS }, (_, i) => manifest(i)).join('\n---\n'));
    await eventually(
      async () => ((await readyCount()) === GROUPS ? true : undefined),
      `${GROUPS} groups Ready`,
      300_000,
    );
    const applied = await operator.metric('featurestore_operator_store_applies_total');
    expect(applied).toBeGreaterThanOrEqual(GROUPS);

    // Quiet first: the last status writes wake their groups once more.
    const reconciles = () => operator.metric('featurestore_operator_reconciles_total');
    let before = await reconciles();
    await eventually(
      async () => {
        await new Promise((r) => setTimeout(r, 1_000));
        const now = await reconciles();
        const settled = now - before < GROUPS;
        before = now;
        return settled ? true : undefined;
      },
      'the reconciles to settle',
      120_000,
    );
    const [ddlBefore, appliesBefore, reconcilesBefore] = [
      await ddlStatements(),
      await operator.metric('featurestore_operator_store_applies_total'),
      await reconciles(),
    ];
    // At least two full resyncs (every 5 s, each reconciles every group).
    await eventually(
      async () => ((await reconciles()) >= reconcilesBefore + 2 * GROUPS ? true : undefined),
      'two full resyncs',
      120_000,
    );
    expect(await operator.metric('featurestore_operator_store_applies_total')).toBe(appliesBefore);
    expect(await ddlStatements()).toBe(ddlBefore);

    // A spec change is applied, for that group alone.
    await kubectlOk(['apply', '-f', '-'], manifest(7, ['last_action', 'last_page']));
    const columnsOf7 = async () =>
      (
        await pool.query<{ column_name: string }>(
          `SELECT column_name FROM information_schema.columns WHERE table_schema = 'features' AND table_name = (SELECT table_name FROM featurestore.feature_groups WHERE namespace = $1 AND name = 'g-7')`,
          [namespace],
        )
      ).rows.map((r) => r.column_name);
    await eventually(
      async () => ((await columnsOf7()).includes('last_page') ? true : undefined),
      'the new column',
      60_000,
    );
    await eventually(async () => ((await readyCount()) === GROUPS ? true : undefined), 'all Ready again', 60_000);
    // Another full resync, and nothing more was applied than that one group, once.
    const settledAt = await reconciles();
    await eventually(
      async () => ((await reconciles()) >= settledAt + GROUPS ? true : undefined),
      'a full resync',
      60_000,
    );
    expect(await operator.metric('featurestore_operator_store_applies_total')).toBe(appliesBefore + 1);
    expect(await ddlStatements()).toBeGreaterThan(ddlBefore);
  });
});
