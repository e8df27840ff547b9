/**
 * The Helm chart against the real kube-apiserver: strict lint, renders that the API server accepts
 * (server-side dry run) and kubeconform -strict validates with the server's own schemas, values
 * that fail at install time with a clear message, and RBAC that is exactly what the operator uses:
 * the operator runs as the chart's ServiceAccount, the audit log shows no request refused and no
 * grant unused, and removing a verb breaks reconciliation.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { Pool } from 'pg';
import { parseAllDocuments, stringify } from 'yaml';
import { consumerGroupFor } from '../../core/kafka';
import { tableNameFor } from '../../core/storage/identifiers';
import { dropWriterRole } from '../../core/storage/roles';
import { dropStore } from '../../core/storage/store';
import { installFeatureGroupCrd, kubeConfig, kubectl, kubectlOk, runTool } from '../support/kube';
import { schemaLocation, writeKubeconformSchemas } from '../support/kube-schemas';
import { testPool, uniqueName } from '../support/platform';
import { eventually, requireEnv, startService, type RunningService } from '../support/services';

const root = join(__dirname, '..', '..');
const chart = join(root, 'charts/feature-store');
const CI_VALUES = ['ci/default-values.yaml', 'ci/full-values.yaml'];
const GROUP = 'featurestore.dev';

const toolPath = (tool: string): string =>
  execFileSync('bash', [join(root, 'test/servers/tools.sh'), 'path', tool], { encoding: 'utf8' }).trim();
const run = (binary: string, args: string[], input?: string) => runTool(binary, args, { input });

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  rules?: { apiGroups?: string[]; resources?: string[]; verbs: string[] }[];
  [key: string]: unknown;
}

const documents = (text: string): Manifest[] =>
  parseAllDocuments(text)
    .map((d) => d.toJSON() as Manifest)
    .filter((d) => d !== null);

describe('Helm chart', () => {
  const namespace = uniqueName('chart');
  const work = mkdtempSync(join(tmpdir(), 'fs-chart-'));
  let helm: string;
  let kubeconform: string;

  // helm template does not ask a cluster: tell it the version of the API server the render is checked against.
  const template = (release: string, args: string[]) =>
    run(helm, ['template', release, chart, '--namespace', namespace, '--kube-version', kubeVersion, ...args]);
  let kubeVersion = '';

  beforeAll(async () => {
    helm = toolPath('helm');
    kubeVersion = (JSON.parse(await kubectlOk(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string } })
      .serverVersion.gitVersion;
    kubeconform = toolPath('kubeconform');
    await installFeatureGroupCrd();
    await kubectlOk(['apply', '--server-side', '-f', join(root, 'test/support/fixtures/servicemonitor-crd.yaml')]);
    await kubectlOk(['apply', '--server-side', '-f', join(root, 'test/support/fixtures/prometheusrule-crd.yaml')]);
    await kubectlOk([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/servicemonitors.monitoring.coreos.com',
    ]);
    await kubectlOk([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/prometheusrules.monitoring.coreos.com',
    ]);
    for (const ns of [namespace, 'ml']) {
      const created = await kubectl(['create', 'namespace', ns]);
      if (created.code !== 0 && !/AlreadyExists/.test(created.stderr)) throw new Error(created.stderr);
    }
    expect(
      await writeKubeconformSchemas(join(work, 'schemas'), ['featurestore.dev/v1alpha1', 'monitoring.coreos.com/v1']),
    ).toBeGreaterThan(50);
  });

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it.each(CI_VALUES)('passes helm lint --strict with %s', async (values) => {
    const lint = await run(helm, ['lint', '--strict', chart, '-f', join(chart, values)]);
    expect(`${lint.stdout}${lint.stderr}`).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(lint.code).toBe(0);
  });

  it.each(CI_VALUES)(
    'renders %s into objects the API server accepts and kubeconform -strict validates',
    async (values) => {
      const rendered = await template('fs', ['-f', join(chart, values)]);
      expect(rendered.stderr).toBe('');
      expect(rendered.code).toBe(0);
      const objects = documents(rendered.stdout);
      expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['Deployment', 'Service', 'ServiceAccount']));

      // Every object names its namespace (Roles land in each watched namespace), so none is forced here.
      const dryRun = await kubectl(['apply', '--dry-run=server', '-f', '-'], rendered.stdout);
      expect(dryRun.stderr).toBe('');
      expect(dryRun.stdout.trim().split('\n')).toHaveLength(objects.length);

      const file = join(work, `${values.replace(/\W/g, '_')}.yaml`);
      writeFileSync(file, rendered.stdout);
      const validated = await run(kubeconform, [
        '-strict',
        '-summary',
        '-output',
        'json',
        '-schema-location',
        schemaLocation(join(work, 'schemas')),
        file,
      ]);
      const report = JSON.parse(validated.stdout) as {
        summary: { valid: number; invalid: number; errors: number; skipped: number };
        resources?: unknown[];
      };
      expect(report.resources ?? []).toEqual([]);
      expect(report.summary).toEqual({ valid: objects.length, invalid: 0, errors: 0, skipped: 0 });
    },
  );

  it('kubeconform -strict validates the CRD and the example FeatureGroups with the served schemas', async () => {
    const validated = await run(kubeconform, [
      '-strict',
      '-summary',
      '-schema-location',
      schemaLocation(join(work, 'schemas')),
      'crds/featuregroup.yaml',
      'examples/user-activity.yaml',
    ]);
    expect(validated.stdout).toMatch(/Valid: 2, Invalid: 0, Errors: 0, Skipped: 0/);
    const typo = readFileSync(join(root, 'examples/user-activity.yaml'), 'utf8').replace('keyField:', 'keyFeld:');
    const refused = await run(
      kubeconform,
      ['-strict', '-schema-location', schemaLocation(join(work, 'schemas')), '-'],
      typo,
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).toMatch(/keyFeld/);
  });

  it.each([
    [
      'negative replicas',
      ['-f', 'ci/default-values.yaml', '--set', 'operator.replicas=-1'],
      /operator\.replicas|replicas/,
    ],
    [
      'auth on without its Secret',
      ['-f', 'ci/default-values.yaml', '--set', 'auth.enabled=true'],
      /auth\.existingSecret|existingSecret/,
    ],
    ['no Kafka brokers and no Postgres Secret', [], /kafka\.brokers|brokers/],
    ['a misspelt value', ['-f', 'ci/default-values.yaml', '--set', 'servng.replicas=2'], /servng/],
  ])('refuses %s with a message naming the value', async (_label, args, message) => {
    const rendered = await template(
      'bad',
      args.map((a) => (a.startsWith('ci/') ? join(chart, a) : a)),
    );
    expect(rendered.code).not.toBe(0);
    expect(rendered.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(rendered.stderr).toMatch(message);
  });

  describe('skaffold.yaml, without a cluster or a Docker engine', () => {
    const skaffold = (args: string[]) =>
      runTool(toolPath('skaffold'), args, {
        env: { ...process.env, PATH: `${join(helm, '..')}:${process.env.PATH ?? ''}`, SKAFFOLD_UPDATE_CHECK: 'false' },
      });

    it('skaffold diagnose accepts the config (--yaml-only: the full run would pull the base image)', async () => {
      const diagnosed = await skaffold(['diagnose', '--yaml-only']);
      expect(diagnosed.stderr).not.toMatch(/error|invalid/i);
      expect(diagnosed.code).toBe(0);
      expect(diagnosed.stdout).toMatch(/chartPath: \S*charts\/feature-store\n/);
    });

    it("tags images so that helm's --set reads the tag as a string, even for a short commit of digits only", async () => {
      const built = await skaffold(['build', '--dry-run', '-q', '-p', 'test-node', '--default-repo', 'registry.test']);
      expect(built.code).toBe(0);
      const { builds } = JSON.parse(built.stdout) as { builds: { tag: string }[] };
      const tag = builds[0]!.tag.replace(/^registry\.test\/feature-store:/, '');
      // helm (like YAML) reads 4233247 or 1e5 as a number; the chart's schema wants a string.
      expect(tag).toMatch(/^git-[0-9a-f]+/);
    });

    it.each([[[]], [['-p', 'dev-deps']]])(
      'skaffold render %j renders what the API server accepts, with the port-forwarded Services',
      async (profile) => {
        const output = join(work, `skaffold-${profile.length}.yaml`);
        const rendered = await skaffold([
          'render',
          '--offline=true',
          '--digest-source=none',
          '--output',
          output,
          ...profile,
        ]);
        expect(rendered.code).toBe(0);
        const manifests = readFileSync(output, 'utf8');
        const objects = documents(manifests);
        const services = objects.filter((o) => o.kind === 'Service').map((o) => o.metadata.name);
        expect(services).toEqual(expect.arrayContaining(['feature-store-serving', 'feature-store-ingest']));
        if (profile.length > 0) expect(services).toEqual(expect.arrayContaining(['dev-kafka', 'dev-postgres']));
        const dryRun = await kubectl(['apply', '--dry-run=server', '-f', '-'], manifests);
        expect(dryRun.stderr).toBe('');
        expect(dryRun.stdout.trim().split('\n')).toHaveLength(objects.length);
      },
    );
  });

  describe('RBAC: the operator as the chart ServiceAccount', () => {
    const release = uniqueName('rbac');
    let pool: Pool;
    let custom: CustomObjectsApi;
    let runner: RunningService;
    let rbac: Manifest[];
    let serviceAccount: string;
    let saKubeconfig: string;
    let leaseName: string;

    /** Runs one operator as the ServiceAccount through a group's life: create, evolve, delete. */
    const lifecycle = async (label: string, timeoutMs: number): Promise<{ ok: boolean; output: string }> => {
      const name = uniqueName(label);
      const operator = await startService(
        'operator',
        {
          KUBECONFIG: saKubeconfig,
          DATABASE_URL: requireEnv('DATABASE_URL'),
          KAFKA_BROKERS: requireEnv('KAFKA_BROKERS'),
          WATCH_NAMESPACES: namespace,
          LEASE_NAMESPACE: namespace,
          LEASE_NAME: leaseName,
          // The chart sets it from the pod's spec.serviceAccountName.
          LEASE_OWNER_SERVICE_ACCOUNT: serviceAccount,
          POD_NAME: `${name}-operator`,
          RESYNC_SECONDS: '10',
        },
        `${namespace}-${name}-operator`,
      );
      const ready = (generation: number) =>
        eventually(
          async () => {
            const fg = (await custom.getNamespacedCustomObject({
              group: GROUP,
              version: 'v1alpha1',
              plural: 'featuregroups',
              namespace,
              name,
            })) as {
              status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
            };
            return fg.status?.observedGeneration === generation &&
              fg.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
              ? true
              : undefined;
          },
          `${name} Ready at generation ${generation}`,
          timeoutMs,
        );
      const manifest = (features: string[]) =>
        stringify({
          apiVersion: `${GROUP}/v1alpha1`,
          kind: 'FeatureGroup',
          metadata: { name, namespace },
          spec: {
            entity: { name: 'user', keyField: 'entity_id' },
            source: { topic: `${name}-events` },
            features: features.map((f) => ({ name: f, type: 'string', from: f })),
            deletionPolicy: 'Delete',
          },
        });
      try {
        await kubectlOk(['apply', '-f', '-'], manifest(['a']));
        await ready(1);
        await kubectlOk(['apply', '-f', '-'], manifest(['a', 'b']));
        await ready(2);
        await kubectlOk([
          'delete',
          'featuregroup',
          name,
          '-n',
          namespace,
          '--wait=true',
          `--timeout=${Math.ceil(timeoutMs / 1000)}s`,
        ]);
        const table = tableNameFor({ namespace, name });
        const left = await pool.query(
          'SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2',
          ['features', table],
        );
        return { ok: left.rowCount === 0, output: operator.tail(200) };
      } catch {
        return { ok: false, output: operator.tail(200) };
      } finally {
        await operator.stop();
        // A failed run leaves its group behind: remove it with admin rights so it cannot confuse the next run.
        await kubectl([
          'patch',
          'featuregroup',
          name,
          '-n',
          namespace,
          '--type=merge',
          '-p',
          '{"metadata":{"finalizers":null}}',
        ]);
        await kubectl(['delete', 'featuregroup', name, '-n', namespace, '--ignore-not-found', '--wait=false']);
        // ...and its store, which a refused finalizer left in the registry (serving would read it).
        await dropStore(pool, { namespace, name }, consumerGroupFor({ namespace, name }));
        await dropWriterRole(pool, tableNameFor({ namespace, name }));
      }
    };

    const granted = (objects: Manifest[]): Set<string> => {
      const out = new Set<string>();
      for (const role of objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
        for (const rule of role.rules ?? [])
          for (const group of rule.apiGroups ?? [])
            for (const resource of rule.resources ?? [])
              for (const verb of rule.verbs) out.add(`${verb} ${group}/${resource}`);
      }
      return out;
    };

    beforeAll(async () => {
      pool = testPool();
      custom = kubeConfig().makeApiClient(CustomObjectsApi);
      const rendered = await template(release, ['-f', join(chart, 'ci/default-values.yaml')]);
      expect(rendered.code).toBe(0);
      const operatorDeployment = documents(rendered.stdout).find(
        (o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-operator'),
      ) as { spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } } } | undefined;
      leaseName =
        operatorDeployment?.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'LEASE_NAME')?.value ?? '';
      expect(leaseName).toMatch(/^rbac-[0-9a-f]+-feature-store-operator$/);
      const operatorObjects = documents(rendered.stdout).filter((o) =>
        ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind),
      );
      rbac = operatorObjects.filter((o) => o.kind !== 'ServiceAccount' || o.metadata.name.endsWith('-operator'));
      serviceAccount = rbac.find((o) => o.kind === 'ServiceAccount')!.metadata.name;
      await kubectlOk(['apply', '--namespace', namespace, '-f', '-'], rbac.map((o) => stringify(o)).join('---\n'));
      const token = (
        await kubectlOk(['create', 'token', serviceAccount, '--namespace', namespace, '--duration=1h'])
      ).trim();
      const admin = kubeConfig();
      const cluster = admin.getCurrentCluster()!;
      saKubeconfig = join(work, 'operator-sa.kubeconfig');
      writeFileSync(
        saKubeconfig,
        stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            {
              name: 'test',
              cluster: {
                server: cluster.server,
                'certificate-authority-data': cluster.caData ?? readFileSync(cluster.caFile!).toString('base64'),
              },
            },
          ],
          users: [{ name: serviceAccount, user: { token } }],
          contexts: [{ name: 'sa', context: { cluster: 'test', user: serviceAccount, namespace } }],
          'current-context': 'sa',
        }),
      );
      runner = await startService('local-runner', { KUBECONFIG: process.env.KUBECONFIG! }, `${namespace}-runner`);
      await runner.waitReady();
    });

    afterAll(async () => {
      await runner?.stop();
      await pool?.end();
    });

    it('is enough: a group is created, evolved and deleted, and the API server refused nothing', async () => {
      const auditLog = execFileSync('bash', [join(root, 'test/servers/kube.sh'), 'audit-log'], {
        encoding: 'utf8',
      }).trim();
      const since = new Date().toISOString();
      const { ok, output } = await lifecycle('enough', 60_000);
      if (!ok) throw new Error(`the operator could not finish with the chart's RBAC:\n${output}`);

      const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
      const events = readFileSync(auditLog, 'utf8')
        .split('\n')
        .filter((line) => line.includes(user))
        .map(
          (line) =>
            JSON.parse(line) as {
              user: { username: string };
              verb: string;
              objectRef?: { apiGroup?: string; resource?: string; subresource?: string };
              responseStatus?: { code?: number };
              stageTimestamp: string;
            },
        )
        .filter((e) => e.user.username === user && e.stageTimestamp >= since && e.objectRef?.resource);
      const describe = (e: (typeof events)[number]) =>
        `${e.verb} ${e.objectRef!.apiGroup ?? ''}/${e.objectRef!.resource}${e.objectRef!.subresource ? `/${e.objectRef!.subresource}` : ''}`;
      expect(events.filter((e) => e.responseStatus?.code === 403).map(describe)).toEqual([]);

      // What the operator did, as authorization saw it: a server-side apply that created an object
      // (201) was authorized as create as well as patch.
      const used = new Set(
        events.flatMap((e) =>
          e.verb === 'patch' && e.responseStatus?.code === 201
            ? [describe(e), describe({ ...e, verb: 'create' })]
            : [describe(e)],
        ),
      );
      // blockOwnerDeletion on owner references needs update on the owner's finalizers: an admission
      // check (OwnerReferencesPermissionEnforcement, on in this API server), not a request of its own.
      used.add(`update ${GROUP}/featuregroups/finalizers`);
      // A repeated event is patched (its count), or read first after a restart: only a failure that
      // recurs does that, and this lifecycle has none (operator-status.test.ts makes one).
      used.add('patch /events');
      used.add('get /events');
      const grants = granted(rbac);
      expect([...grants].filter((g) => !used.has(g)).sort()).toEqual([]);
      expect([...used].filter((u) => !grants.has(u)).sort()).toEqual([]);
    });

    it('cannot read Secrets: neither the consumer credentials it writes nor any other', async () => {
      const as = `--as=system:serviceaccount:${namespace}:${serviceAccount}`;
      const reads = [
        ['get', 'secrets', '-n', namespace],
        ['list', 'secrets', '-n', namespace],
        ['watch', 'secrets', '-n', namespace],
        ['get', 'secrets', '--all-namespaces'],
        ['list', 'secrets', '--all-namespaces'],
      ];
      for (const read of reads)
        expect(`${read.join(' ')}: ${(await kubectl(['auth', 'can-i', ...read, as])).stdout.trim()}`).toBe(
          `${read.join(' ')}: no`,
        );
      // What it does need: writing them.
      expect((await kubectl(['auth', 'can-i', 'create', 'secrets', '-n', namespace, as])).stdout.trim()).toBe('yes');
    });

    it.each([
      ['patch', 'apps', 'deployments'],
      ['update', GROUP, 'featuregroups/finalizers'],
    ])('is needed: without %s on %s/%s the group never gets through', async (verb, group, resource) => {
      const reduced = rbac.map((o) =>
        o.kind === 'ClusterRole' || o.kind === 'Role'
          ? {
              ...o,
              rules: (o.rules ?? [])
                .map((r) =>
                  r.apiGroups?.includes(group) && r.resources?.includes(resource)
                    ? { ...r, verbs: r.verbs.filter((v) => v !== verb) }
                    : r,
                )
                .filter((r) => r.verbs.length > 0),
            }
          : o,
      );
      await kubectlOk(
        ['apply', '--namespace', namespace, '-f', '-'],
        reduced
          .filter((o) => o.kind.endsWith('Role'))
          .map((o) => stringify(o))
          .join('---\n'),
      );
      try {
        const { ok, output } = await lifecycle('reduced', 20_000);
        expect(ok).toBe(false);
        expect(output).toMatch(/forbidden/i);
      } finally {
        await kubectlOk(
          ['apply', '--namespace', namespace, '-f', '-'],
          rbac
            .filter((o) => o.kind.endsWith('Role'))
            .map((o) => stringify(o))
            .join('---\n'),
        );
      }
    });
  });
});
