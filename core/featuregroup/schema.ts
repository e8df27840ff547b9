import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './duration';

/**
 * The FeatureGroup contract (featurestore.dev/v1alpha1). This zod schema is the single source of
 * truth: every component validates with it and the CRD's OpenAPI schema is generated from it.
 */

export const API_GROUP = 'featurestore.dev';
export const API_VERSION = 'v1alpha1';
export const KIND = 'FeatureGroup';
/** The namespace feature references may leave out (`group:feature`). */
export const DEFAULT_NAMESPACE = 'default';

/**
 * Lower-case SQL-safe name; `__` is reserved for the storage layout's own column suffixes. Each `_`
 * must be followed by a letter or digit (so no `__` and no trailing `_`), written without lookaround
 * so that the CRD's copy of this pattern runs on Kubernetes' RE2 engine.
 */
export const IDENTIFIER_PATTERN = /^[a-z](?:_?[a-z0-9])*$/;
/** A dotted path into an event: `user.id`, `amount`. */
export const FIELD_PATH_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*$/;
export const TOPIC_PATTERN = /^[A-Za-z0-9._-]{1,249}$/;
export const RESERVED_FEATURE_NAMES = ['entity_id'] as const;

export const FEATURE_TYPES = ['string', 'int64', 'float64', 'bool', 'timestamp', 'json'] as const;
export const AGGREGATE_FUNCTIONS = ['count', 'sum', 'avg', 'min', 'max', 'last_n'] as const;

export type FeatureType = (typeof FEATURE_TYPES)[number];
export type AggregateFunction = (typeof AGGREGATE_FUNCTIONS)[number];

const identifier = z
  .string()
  .max(48)
  .regex(IDENTIFIER_PATTERN, 'must match [a-z][a-z0-9_]* without "__" or a trailing "_"');
const fieldPath = z.string().min(1).max(256).regex(FIELD_PATH_PATTERN, 'must be a dotted field path such as user.id');
const duration = z.string().regex(DURATION_PATTERN, 'must be a duration such as 30s, 10m, 1h or 7d');
const scalar = z.union([z.string(), z.number(), z.boolean()]);

export const predicateSchema = z
  .object({
    field: fieldPath,
    equals: scalar.optional(),
    in: z.array(scalar).min(1).max(256).optional(),
  })
  .strict()
  .refine((p) => (p.equals === undefined) !== (p.in === undefined), {
    error: 'set exactly one of equals or in',
  });

/** Tiles are at least 1 s and at most 1/60 of the window. */
export const MIN_AGGREGATE_WINDOW_MS = 60_000;

export const aggregateSchema = z
  .object({
    fn: z.enum(AGGREGATE_FUNCTIONS),
    field: fieldPath.optional(),
    window: duration,
    /** last_n only. Not `n`: YAML 1.1 (kubectl's parser) reads a bare `n` key as false. */
    limit: z.number().int().min(1).max(1000).optional(),
    where: predicateSchema.optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (DURATION_PATTERN.test(a.window) && parseDuration(a.window) < MIN_AGGREGATE_WINDOW_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['window'],
        message: 'aggregate windows are at least 1m (kept in tiles of 1/60 of the window, at least 1s)',
      });
    }
    if (a.fn !== 'count' && a.field === undefined) {
      ctx.addIssue({ code: 'custom', path: ['field'], message: `aggregate ${a.fn} needs a field` });
    }
    if (a.fn === 'last_n' && a.limit === undefined) {
      ctx.addIssue({ code: 'custom', path: ['limit'], message: 'aggregate last_n needs limit' });
    }
    if (a.fn !== 'last_n' && a.limit !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['limit'], message: 'limit applies only to last_n' });
    }
  });

const AGGREGATE_RESULT_TYPES: Record<AggregateFunction, readonly FeatureType[]> = {
  count: ['int64'],
  sum: ['int64', 'float64'],
  avg: ['float64'],
  min: ['int64', 'float64', 'timestamp'],
  max: ['int64', 'float64', 'timestamp'],
  last_n: ['json'],
};

export const featureSchema = z
  .object({
    name: identifier.refine((n) => !(RESERVED_FEATURE_NAMES as readonly string[]).includes(n), 'is reserved'),
    type: z.enum(FEATURE_TYPES),
    description: z.string().max(1024).optional(),
    from: fieldPath.optional(),
    aggregate: aggregateSchema.optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    if ((f.from === undefined) === (f.aggregate === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'set exactly one of from or aggregate' });
    }
    if (f.aggregate && !AGGREGATE_RESULT_TYPES[f.aggregate.fn].includes(f.type)) {
      ctx.addIssue({
        code: 'custom',
        path: ['type'],
        message: `aggregate ${f.aggregate.fn} yields ${AGGREGATE_RESULT_TYPES[f.aggregate.fn].join(' or ')}`,
      });
    }
  });

/**
 * A Kubernetes resource quantity (`500m`, `256Mi`, `1.5`, `2e3`), as apimachinery parses it, but
 * never negative: no container resource may be.
 */
export const QUANTITY_PATTERN =
  '^\\+?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
export const quantitySchema = z.union([
  z.number().int().min(0),
  z.string().regex(new RegExp(QUANTITY_PATTERN), 'must be a Kubernetes quantity such as 500m or 256Mi').max(64),
]);
/** Resource names: `cpu`, `memory`, `ephemeral-storage`, `hugepages-2Mi`, `example.com/gpu`. */
const RESOURCE_NAME = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const resourceList = z.record(
  z.string().regex(RESOURCE_NAME, 'must be a resource name such as cpu or memory').max(253),
  quantitySchema,
);
/** The consumer container's resources: Kubernetes' ResourceRequirements (limits and requests). */
export const resourceRequirementsSchema = z
  .object({ limits: resourceList.optional(), requests: resourceList.optional() })
  .strict();

export const featureGroupSpecSchema = z
  .object({
    entity: z.object({ name: identifier, keyField: fieldPath }).strict(),
    source: z
      .object({
        topic: z.string().regex(TOPIC_PATTERN, 'must be a Kafka topic name'),
        eventTimeField: fieldPath.optional(),
        filter: predicateSchema.optional(),
        deadLetterTopic: z.string().regex(TOPIC_PATTERN, 'must be a Kafka topic name').optional(),
      })
      .strict(),
    features: z
      .array(featureSchema)
      .min(1)
      .max(200)
      .superRefine((features, ctx) => {
        const seen = new Set<string>();
        features.forEach((f, i) => {
          if (seen.has(f.name))
            ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate feature ${f.name}` });
          seen.add(f.name);
        });
      }),
    ttl: duration.optional(),
    history: z
      .object({ enabled: z.boolean().default(false), retention: duration.optional() })
      .strict()
      .optional(),
    consumer: z
      .object({
        replicas: z.number().int().min(0).max(64).default(1),
        batchSize: z.number().int().min(1).max(100_000).default(5_000),
        resources: resourceRequirementsSchema.default({}),
      })
      .strict()
      .default({ replicas: 1, batchSize: 5_000, resources: {} }),
    deletionPolicy: z.enum(['Retain', 'Delete']).default('Retain'),
  })
  .strict();

/** Kubernetes object names: DNS-1123 labels (namespace) and subdomains (name). */
const DNS_LABEL = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?';
const DNS_SUBDOMAIN = `${DNS_LABEL}(?:\\.${DNS_LABEL})*`;
export const DNS_LABEL_PATTERN = new RegExp(`^${DNS_LABEL}$`);
export const DNS_SUBDOMAIN_PATTERN = new RegExp(`^${DNS_SUBDOMAIN}$`);
const dnsLabel = z.string().max(63).regex(DNS_LABEL_PATTERN, 'must be a DNS-1123 label');
const dnsSubdomain = z.string().max(253).regex(DNS_SUBDOMAIN_PATTERN, 'must be a DNS-1123 subdomain');

/** A feature reference: `group:feature`, or `namespace/group:feature` outside the default namespace. */
export const FEATURE_REF_PATTERN = new RegExp(
  `^(?:${DNS_LABEL}/)?${DNS_SUBDOMAIN}:${IDENTIFIER_PATTERN.source.slice(1, -1)}$`,
);
export const featureRefSchema = z
  .string()
  .max(600)
  .regex(FEATURE_REF_PATTERN, 'must be "group:feature" or "namespace/group:feature"')
  .meta({ examples: ['user-activity:last_action', 'ml/user-activity:last_action'] });

export const featureGroupSchema = z.object({
  apiVersion: z.literal(`${API_GROUP}/${API_VERSION}`),
  kind: z.literal(KIND),
  metadata: z.object({ name: dnsSubdomain, namespace: dnsLabel.default(DEFAULT_NAMESPACE) }).loose(),
  spec: featureGroupSpecSchema,
});

export type Predicate = z.infer<typeof predicateSchema>;
export type Aggregate = z.infer<typeof aggregateSchema>;
export type Feature = z.infer<typeof featureSchema>;
export type FeatureGroupSpec = z.infer<typeof featureGroupSpecSchema>;
export type FeatureGroupSpecInput = z.input<typeof featureGroupSpecSchema>;
export type FeatureGroup = z.infer<typeof featureGroupSchema>;

export interface GroupRef {
  namespace: string;
  name: string;
}

export function groupId(ref: GroupRef): string {
  return `${ref.namespace}/${ref.name}`;
}

export function parseGroupId(text: string): GroupRef {
  const parts = text.split('/');
  const [namespace, name] = parts.length === 2 ? parts : [DEFAULT_NAMESPACE, parts[0]];
  const parsed = featureGroupSchema.shape.metadata.safeParse({ namespace, name });
  if (!parsed.success || parts.length > 2)
    throw new Error(`invalid feature group id "${text}": expected <namespace>/<name>`);
  return { namespace: parsed.data.namespace, name: parsed.data.name };
}

/** Human-readable one-line summary of a zod error, naming the paths that failed. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}
