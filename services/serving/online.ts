import { ENTITY_ID_RULE, entityIdOf } from '../../core/events/extract';
import type { Pool } from 'pg';
import { z } from 'zod';
import type { JsonValue } from '../../core/events/path';
import { describeIssues, featureRefSchema, IDENTIFIER_PATTERN, parseGroupId } from '../../core/featuregroup/schema';
import { isJsonObject } from '../../core/events/path';
import { HttpError } from '../../core/http/errors';
import { formatTime } from '../../core/time';
import type { Catalog, ServedGroup } from './catalog';

export const FeatureStatus = {
  PRESENT: 'PRESENT',
  NOT_FOUND: 'NOT_FOUND',
  OUTSIDE_MAX_AGE: 'OUTSIDE_MAX_AGE',
} as const;
export type FeatureStatus = (typeof FeatureStatus)[keyof typeof FeatureStatus];

/** Feast's "no timestamp" marker, which its clients expect for the entity column and misses. */
const NO_TIMESTAMP = '1970-01-01T00:00:00Z';

const entityValue = z.union([
  z
    .string()
    .min(1)
    .max(1024)
    // eslint-disable-next-line no-control-regex -- U+0000 is exactly what an id may not hold
    .regex(/^[^\u0000]*$/)
    .refine((s) => entityIdOf(s) !== undefined, `must be ${ENTITY_ID_RULE}`)
    .meta({ description: ENTITY_ID_RULE }),
  z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
]);
/**
 * Feast's GetOnlineFeaturesRequest: every field it has, typed strictly; other top-level fields are
 * ignored, as Feast's server (pydantic) ignores them, so a newer SDK's additions do not break reads.
 */
export const onlineRequestSchema = z
  .object({
    features: z.array(featureRefSchema).min(1),
    /** Not supported yet: a request that has it gets a 400 that says so (before this schema runs). */
    feature_service: z.never().optional(),
    entities: z.record(z.string().regex(IDENTIFIER_PATTERN).max(48), z.array(entityValue)).meta({
      minProperties: 1,
      maxProperties: 1,
      description: "one entity key (the groups' entity.name) and its ids",
    }),
    full_feature_names: z.boolean().optional(),
    include_feature_view_version_metadata: z.boolean().optional(),
  })
  .loose();

export interface OnlineResult {
  values: JsonValue[];
  statuses: FeatureStatus[];
  event_timestamps: string[];
}

/** Per group read: its reference name and its generation (what `kubectl get fg` shows as GENERATION). */
export interface FeatureViewMetadata {
  name: string;
  version: number;
}

export interface OnlineResponse {
  metadata: { feature_names: string[]; feature_view_metadata?: FeatureViewMetadata[] };
  results: OnlineResult[];
}

interface RequestedFeature {
  ref: string;
  group: ServedGroup;
  feature: string;
}

export interface OnlineLimits {
  maxEntities: number;
  maxFeatures: number;
}

/** `group:feature` (default namespace) or `namespace/group:feature`. */
export function resolveFeature(catalog: Catalog, ref: string, index: number): RequestedFeature {
  const colon = ref.lastIndexOf(':');
  const field = `features.${index}`;
  if (colon <= 0)
    throw new HttpError(
      400,
      'E_BAD_FEATURE_REF',
      `feature "${ref}" must be "group:feature" or "namespace/group:feature"`,
      field,
    );
  let groupKey: string;
  try {
    const parsed = parseGroupId(ref.slice(0, colon));
    groupKey = `${parsed.namespace}/${parsed.name}`;
  } catch {
    throw new HttpError(400, 'E_BAD_FEATURE_REF', `feature "${ref}" names an invalid group`, field);
  }
  const group = catalog.get(groupKey);
  if (!group) throw new HttpError(404, 'E_UNKNOWN_GROUP', `feature group ${groupKey} does not exist`, field);
  const feature = ref.slice(colon + 1);
  if (!group.types.has(feature))
    throw new HttpError(
      404,
      'E_UNKNOWN_FEATURE',
      `feature group ${groupKey} has no served feature "${feature}"`,
      field,
    );
  return { ref, group, feature };
}

export function parseOnlineRequest(body: unknown, catalog: Catalog, limits: OnlineLimits) {
  if (isJsonObject(body) && typeof body.feature_service === 'string') {
    throw new HttpError(
      400,
      'E_FEATURE_SERVICE_UNSUPPORTED',
      `feature services are not declared in this store yet: list the features ("group:feature") instead of feature_service ${JSON.stringify(body.feature_service.slice(0, 100))}`,
      'feature_service',
    );
  }
  const parsed = onlineRequestSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const code = issue.path[0] === 'features' && issue.path.length === 2 ? 'E_BAD_FEATURE_REF' : 'E_BAD_REQUEST';
    throw new HttpError(400, code, describeIssues(parsed.error), issue.path.join('.') || 'body');
  }
  const { features, entities, full_feature_names } = parsed.data;
  if (features.length > limits.maxFeatures)
    throw new HttpError(400, 'E_TOO_MANY_FEATURES', `at most ${limits.maxFeatures} features per request`, 'features');
  const keys = Object.keys(entities);
  if (keys.length !== 1)
    throw new HttpError(
      400,
      'E_BAD_ENTITIES',
      'entities must name exactly one entity key, e.g. {"user": ["u1"]}',
      'entities',
    );
  const entityKey = keys[0]!;
  const ids = entities[entityKey]!;
  if (ids.length > limits.maxEntities)
    throw new HttpError(
      400,
      'E_TOO_MANY_ENTITIES',
      `at most ${limits.maxEntities} entities per request`,
      `entities.${entityKey}`,
    );
  const requested = features.map((ref, i) => resolveFeature(catalog, ref, i));
  for (const r of requested) {
    if (r.group.registered.spec.entity.name !== entityKey) {
      throw new HttpError(
        404,
        'E_ENTITY_MISMATCH',
        `feature ${r.ref} is keyed by entity "${r.group.registered.spec.entity.name}", not "${entityKey}"`,
        'entities',
      );
    }
  }
  return {
    entityKey,
    ids,
    requested,
    fullNames: full_feature_names === true,
    versionMetadata: parsed.data.include_feature_view_version_metadata === true,
  };
}

/**
 * Response names: the feature's own name, or with `full_feature_names` Feast's `group__feature`
 * (`namespace/group__feature` outside the default namespace). Where two requested features share a
 * name (same-named groups, or groups with a same-named feature), those two take the full name even
 * without the flag, so no column is ever ambiguous (Feast's SDK refuses such a request itself).
 */
function featureNames(requested: readonly RequestedFeature[], fullNames: boolean): string[] {
  const full = (r: RequestedFeature) => `${r.group.group.refName}__${r.feature}`;
  if (fullNames) return requested.map(full);
  const uses = new Map<string, Set<string>>();
  for (const r of requested) uses.set(r.feature, (uses.get(r.feature) ?? new Set()).add(r.group.group.id));
  return requested.map((r) => ((uses.get(r.feature)?.size ?? 0) > 1 ? full(r) : r.feature));
}

/**
 * Many entities × many features, in Feast's column-major response shape: one statement for every
 * group involved (each group read once for all the entities, whatever the feature count).
 */
export async function getOnlineFeatures(
  pool: Pool,
  catalog: Catalog,
  request: ReturnType<typeof parseOnlineRequest>,
  now = Date.now(),
): Promise<OnlineResponse> {
  const { entityKey, ids, requested, fullNames, versionMetadata } = request;
  const keys = ids.map(String);
  const byGroup = new Map<ServedGroup, string[]>();
  for (const r of requested) {
    const names = byGroup.get(r.group) ?? [];
    if (!names.includes(r.feature)) names.push(r.feature);
    byGroup.set(r.group, names);
  }
  const selections = [...byGroup].map(([group, features]) => ({ group, features }));
  const distinct = [...new Set(keys)];
  const statement = catalog.onlineStatement(selections, distinct.length === 1);
  const rows = await statement.read(pool, distinct, now);
  const rowOf = keys.map((key) => rows.get(key)!);
  const groupAt = new Map(selections.map((s, i) => [s.group, i]));

  const columns = requested.map((r): OnlineResult => {
    const feature = statement.groups[groupAt.get(r.group)!]!.byName.get(r.feature)!;
    const ttl = r.group.group.ttlMs;
    const values: JsonValue[] = new Array<JsonValue>(keys.length);
    const statuses: FeatureStatus[] = new Array<FeatureStatus>(keys.length);
    const times: string[] = new Array<string>(keys.length);
    for (let k = 0; k < keys.length; k++) {
      const row = rowOf[k]!;
      const ms = feature.eventMs(row);
      if (ms === null) {
        values[k] = null;
        statuses[k] = FeatureStatus.NOT_FOUND;
        times[k] = NO_TIMESTAMP;
        continue;
      }
      values[k] = feature.value(row);
      statuses[k] = ttl !== undefined && now - ms > ttl ? FeatureStatus.OUTSIDE_MAX_AGE : FeatureStatus.PRESENT;
      times[k] = formatTime(ms);
    }
    return { values, statuses, event_timestamps: times };
  });

  const entityColumn: OnlineResult = {
    values: ids,
    statuses: ids.map(() => FeatureStatus.PRESENT),
    event_timestamps: ids.map(() => NO_TIMESTAMP),
  };
  return {
    metadata: {
      feature_names: [entityKey, ...featureNames(requested, fullNames)],
      ...(versionMetadata
        ? {
            feature_view_metadata: [...byGroup.keys()].map((g) => ({
              name: g.group.refName,
              version: g.registered.generation,
            })),
          }
        : {}),
    },
    results: [entityColumn, ...columns],
  };
}
