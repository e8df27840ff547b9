import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kubectlOk } from './kube';

type Schema = { [key: string]: unknown };
interface OpenApiDocument {
  components?: { schemas?: Record<string, Schema> };
}
interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** kubeconform's -schema-location template for the files writeKubeconformSchemas writes. */
export const schemaLocation = (dir: string): string =>
  `${dir}/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json`;

/**
 * Turns one OpenAPI v3 component into a standalone JSON schema: every $ref inlined (a recursive
 * type is cut to `{}` where it recurs), and objects closed (`additionalProperties: false`) so
 * kubeconform -strict catches misspelt fields the way the API server's field validation would.
 */
function standalone(name: string, components: Record<string, Schema>): Schema {
  const inline = (node: unknown, path: readonly string[]): unknown => {
    if (Array.isArray(node)) return node.map((n) => inline(n, path));
    if (typeof node !== 'object' || node === null) return node;
    const source = node as Schema;
    const ref = source.$ref;
    if (typeof ref === 'string') {
      const target = ref.replace('#/components/schemas/', '');
      if (path.includes(target)) return {};
      return inline(components[target] ?? {}, [...path, target]);
    }
    const out: Schema = {};
    for (const [key, value] of Object.entries(source)) {
      out[key] =
        key === 'properties' && typeof value === 'object' && value !== null
          ? Object.fromEntries(Object.entries(value).map(([p, v]) => [p, inline(v, path)]))
          : inline(value, path);
    }
    const preserves = out['x-kubernetes-preserve-unknown-fields'] === true;
    if (out.properties !== undefined && out.additionalProperties === undefined && !preserves)
      out.additionalProperties = false;
    return out;
  };
  return inline(components[name], [name]) as Schema;
}

/**
 * Writes a kubeconform schema tree for every kind the running API server serves, CRDs included,
 * from its own OpenAPI v3 documents: no schema download (nothing outside the registries is
 * reachable here), and exactly the API the manifests are validated against.
 */
export async function writeKubeconformSchemas(
  dir: string,
  requiredGroupVersions: readonly string[] = [],
): Promise<number> {
  // A CRD's schema reaches /openapi/v3 some seconds after the CRD is Established: wait for those asked for.
  const deadline = Date.now() + 60_000;
  let index: { paths: Record<string, { serverRelativeURL: string }> };
  for (;;) {
    index = JSON.parse(await kubectlOk(['get', '--raw', '/openapi/v3'])) as {
      paths: Record<string, { serverRelativeURL: string }>;
    };
    const missing = requiredGroupVersions.filter((gv) => !index.paths[`apis/${gv}`]);
    if (missing.length === 0) break;
    if (Date.now() > deadline)
      throw new Error(`the API server did not publish OpenAPI for ${missing.join(', ')} within 60 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  let written = 0;
  for (const [path, { serverRelativeURL }] of Object.entries(index.paths)) {
    if (!/^(api\/v1|apis\/[^/]+\/[^/]+)$/.test(path)) continue;
    const document = JSON.parse(await kubectlOk(['get', '--raw', serverRelativeURL])) as OpenApiDocument;
    const components = document.components?.schemas ?? {};
    for (const [name, schema] of Object.entries(components)) {
      const kinds = schema['x-kubernetes-group-version-kind'] as GroupVersionKind[] | undefined;
      // Only the kind this document serves; List and option kinds are not manifests.
      const gvk = kinds?.find((k) => path === (k.group ? `apis/${k.group}/${k.version}` : `api/${k.version}`));
      if (!gvk || gvk.kind.endsWith('List') || !(schema.properties as Schema | undefined)?.metadata) continue;
      const groupDir = join(dir, gvk.group || gvk.version);
      mkdirSync(groupDir, { recursive: true });
      writeFileSync(
        join(groupDir, `${gvk.kind.toLowerCase()}_${gvk.version}.json`),
        JSON.stringify(standalone(name, components)),
      );
      written += 1;
    }
  }
  return written;
}
