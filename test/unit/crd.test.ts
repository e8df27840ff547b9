/* eslint-disable @typescript-eslint/no-explicit-any -- the generated CRD is walked as untyped JSON; each path is checked by the assertion that reads it. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { main as generateCrd } from '../../crds/generate';
import { DURATION_PATTERN } from '../../core/featuregroup/duration';
import {
  IMPLIED_MAX_LENGTH,
  buildFeatureGroupCrd,
  deriveAggregateRules,
  renderFeatureGroupCrd,
  toStructural,
  type JsonObject,
} from '../../crds/featuregroup-crd';
import { IDENTIFIER_PATTERN, TOPIC_PATTERN, featureGroupSchema } from '../../core/featuregroup/schema';

const root = join(__dirname, '../..');
const crd = buildFeatureGroupCrd() as any;
const version = crd.spec.versions[0];
const openAPIV3Schema: JsonObject = version.schema.openAPIV3Schema;
const specSchema: JsonObject = (openAPIV3Schema.properties as any).spec;

/** Calls visit on every schema node below (and including) node, with a readable path. */
function walk(node: JsonObject, path: string, visit: (node: JsonObject, path: string) => void): void {
  visit(node, path);
  for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, JsonObject>))
    walk(child, `${path}.${name}`, visit);
  if (node.items) walk(node.items as JsonObject, `${path}[]`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === 'object')
    walk(node.additionalProperties as JsonObject, `${path}{}`, visit);
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    ((node[key] ?? []) as JsonObject[]).forEach((branch, i) => walk(branch, `${path}.${key}[${i}]`, () => undefined));
  }
}

function allNodes(node: JsonObject, path: string): Array<[string, JsonObject]> {
  const nodes: Array<[string, JsonObject]> = [];
  walk(node, path, (n, p) => nodes.push([p, n]));
  return nodes;
}

/** Constructs Go's RE2 engine does not have (it would refuse the CRD, or every object). */
function re2Problems(pattern: string): string[] {
  const problems: string[] = [];
  if (/\(\?[=!]/.test(pattern)) problems.push('lookahead');
  if (/\(\?<[=!]/.test(pattern)) problems.push('lookbehind');
  if (/(^|[^\\])\\[1-9]/.test(pattern) || /\\k</.test(pattern)) problems.push('backreference');
  if (/\(\?>/.test(pattern)) problems.push('atomic group');
  if (/[*+?}]\+/.test(pattern)) problems.push('possessive quantifier');
  return problems;
}

/**
 * A small validator for the OpenAPI subset the CRD uses, with the API server's meaning: untyped
 * preserve-unknown-fields nodes take anything, unknown fields are reported (kubectl's default
 * field validation is Strict), `oneOf` holds only alternatives of required fields.
 */
function validate(schema: JsonObject, value: unknown, path: string, errors: string[]): void {
  const err = (message: string): void => {
    errors.push(`${path}: ${message}`);
  };
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) err(`not one of ${JSON.stringify(schema.enum)}`);
  switch (schema.type) {
    case undefined:
      if (schema['x-kubernetes-int-or-string'] === true) {
        if (typeof value === 'string') {
          if (!new RegExp(schema.pattern as string).test(value)) err(`does not match ${schema.pattern as string}`);
        } else if (!Number.isInteger(value)) err('must be an integer or a string');
        return;
      }
      if (schema['x-kubernetes-preserve-unknown-fields'] !== true) err('schema node without type');
      return;
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        err('must be an object');
        return;
      }
      const object = value as Record<string, unknown>;
      for (const key of (schema.required ?? []) as string[]) if (!(key in object)) err(`${key} is required`);
      if (schema.oneOf) {
        const matches = (schema.oneOf as JsonObject[]).filter((b) =>
          (b.required as string[]).every((k) => k in object),
        );
        if (matches.length !== 1) err(`must validate one and only one schema (oneOf), found ${matches.length}`);
      }
      const properties = schema.properties as Record<string, JsonObject> | undefined;
      if (!properties) return; // metadata, preserve-unknown objects
      for (const [key, child] of Object.entries(object)) {
        if (properties[key]) validate(properties[key], child, `${path}.${key}`, errors);
        else if (schema['x-kubernetes-preserve-unknown-fields'] !== true) err(`unknown field "${key}"`);
      }
      return;
    }
    case 'array':
      if (!Array.isArray(value)) {
        err('must be an array');
        return;
      }
      if (typeof schema.minItems === 'number' && value.length < schema.minItems)
        err(`needs at least ${schema.minItems} items`);
      if (typeof schema.maxItems === 'number' && value.length > schema.maxItems)
        err(`allows at most ${schema.maxItems} items`);
      value.forEach((item, i) => validate(schema.items as JsonObject, item, `${path}[${i}]`, errors));
      return;
    case 'string':
      if (typeof value !== 'string') {
        err('must be a string');
        return;
      }
      if (typeof schema.minLength === 'number' && value.length < schema.minLength) err('too short');
      if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) err('too long');
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(value))
        err(`must match ${schema.pattern}`);
      return;
    case 'integer':
    case 'number':
      if (typeof value !== 'number' || (schema.type === 'integer' && !Number.isInteger(value))) {
        err(`must be ${schema.type}`);
        return;
      }
      if (typeof schema.minimum === 'number' && value < schema.minimum) err(`must be >= ${schema.minimum}`);
      if (typeof schema.maximum === 'number' && value > schema.maximum) err(`must be <= ${schema.maximum}`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') err('must be a boolean');
      return;
    default:
      err(`unknown type ${JSON.stringify(schema.type)}`);
  }
}

function validateSpec(spec: unknown): string[] {
  const errors: string[] = [];
  validate(specSchema, spec, 'spec', errors);
  return errors;
}

describe('crds/featuregroup.yaml', () => {
  it('is the generated text (run `make crds` after changing the zod schema)', () => {
    const rendered = renderFeatureGroupCrd();
    let committed: string;
    try {
      committed = readFileSync(join(root, 'crds/featuregroup.yaml'), 'utf8');
    } catch {
      throw new Error('crds/featuregroup.yaml is missing: run make crds');
    }
    if (committed !== rendered) {
      const a = committed.split('\n');
      const b = rendered.split('\n');
      const line = a.findIndex((l, i) => l !== b[i]);
      throw new Error(
        `crds/featuregroup.yaml is stale: run make crds\n` +
          `first difference at line ${line + 1}:\n  committed: ${a[line] ?? '(end of file)'}\n  generated: ${b[line] ?? '(end of file)'}`,
      );
    }
    expect(committed.startsWith('# Generated by make crds from core/featuregroup/schema.ts — do not edit.\n')).toBe(
      true,
    );
    expect(parse(committed)).toEqual(crd);
  });

  it('reads the same under YAML 1.1, as kubectl parses it (no bare y/n/on/off/yes/no keys or values)', () => {
    const committed = readFileSync(join(root, 'crds/featuregroup.yaml'), 'utf8');
    expect(parse(committed, { version: '1.1' })).toEqual(parse(committed));
  });

  it('is the file the Helm chart installs (charts/feature-store/crds/, written by make crds)', () => {
    const chartCopy = join(root, 'charts/feature-store/crds/featuregroup.yaml');
    expect(readFileSync(chartCopy, 'utf8')).toBe(readFileSync(join(root, 'crds/featuregroup.yaml'), 'utf8'));
  });

  it('is rendered deterministically', () => {
    expect(renderFeatureGroupCrd()).toBe(renderFeatureGroupCrd());
  });

  it('generate.js writes the file and --check tells when it is stale', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crd-'));
    const file = join(dir, 'featuregroup.yaml');
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(generateCrd(['--check', '--out', file])).toBe(1);
      expect(generateCrd(['--out', file])).toBe(0);
      expect(readFileSync(file, 'utf8')).toBe(renderFeatureGroupCrd());
      expect(generateCrd(['--check', '--out', file])).toBe(0);
      writeFileSync(file, renderFeatureGroupCrd().replace('maxItems: 200', 'maxItems: 201'));
      expect(generateCrd(['--check', '--out', file])).toBe(1);
      expect(error).toHaveBeenLastCalledWith(expect.stringMatching(/is stale: run make crds$/));
      expect(generateCrd(['--frobnicate'])).toBe(2);
    } finally {
      log.mockRestore();
      error.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the FeatureGroup CRD', () => {
  it('names the resource and its columns', () => {
    expect(crd).toMatchObject({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'featuregroups.featurestore.dev' },
      spec: {
        group: 'featurestore.dev',
        scope: 'Namespaced',
        names: {
          kind: 'FeatureGroup',
          listKind: 'FeatureGroupList',
          plural: 'featuregroups',
          singular: 'featuregroup',
          shortNames: ['fg'],
          categories: ['featurestore'],
        },
      },
    });
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({
      name: 'v1alpha1',
      served: true,
      storage: true,
      subresources: {
        status: {},
        scale: {
          specReplicasPath: '.spec.consumer.replicas',
          statusReplicasPath: '.status.replicas',
          labelSelectorPath: '.status.selector',
        },
      },
    });
    // Each scale path names a field the schema has, of the type the scale subresource needs.
    expect(specSchema).toMatchObject({ properties: { consumer: { properties: { replicas: { type: 'integer' } } } } });
    expect((openAPIV3Schema.properties as any).status.properties).toMatchObject({
      replicas: { type: 'integer' },
      selector: { type: 'string' },
    });
    expect(version.additionalPrinterColumns).toEqual([
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
      { name: 'Replicas', type: 'integer', jsonPath: '.status.replicas' },
      { name: 'Lag', type: 'integer', jsonPath: '.status.lag' },
      { name: 'Table', type: 'string', jsonPath: '.status.table' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ]);
    expect(openAPIV3Schema.required).toEqual(['spec']);
    expect(Object.keys(openAPIV3Schema.properties as object)).toEqual([
      'apiVersion',
      'kind',
      'metadata',
      'spec',
      'status',
    ]);
    expect((openAPIV3Schema.properties as any).metadata).toEqual({ type: 'object' });
    const conditions = (openAPIV3Schema.properties as any).status.properties.conditions;
    expect(conditions).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
    expect(conditions.items.properties.status.enum).toEqual(['True', 'False', 'Unknown']);
  });

  it('has a structural schema', () => {
    const problems: string[] = [];
    const allowedAtRoot = new Set(['description', 'type', 'required', 'properties']);
    for (const key of Object.keys(openAPIV3Schema))
      if (!allowedAtRoot.has(key)) problems.push(`root: ${key} not allowed with a status subresource`);
    for (const [path, node] of allNodes(openAPIV3Schema, 'root')) {
      const untyped = node.type === undefined;
      // Kubernetes' one typed anyOf: int-or-string, exactly as its own schemas write it.
      const intOrString =
        node['x-kubernetes-int-or-string'] === true &&
        JSON.stringify(node.anyOf) === JSON.stringify([{ type: 'integer' }, { type: 'string' }]);
      if (untyped && node['x-kubernetes-preserve-unknown-fields'] !== true && !intOrString)
        problems.push(`${path}: no type`);
      for (const key of [
        '$ref',
        '$schema',
        'definitions',
        '$defs',
        'anyOf',
        'allOf',
        'not',
        'const',
        'uniqueItems',
        'additionalItems',
        'patternProperties',
        'id',
      ])
        if (node[key] !== undefined && !(key === 'anyOf' && intOrString)) problems.push(`${path}: ${key}`);
      if (node.additionalProperties === false) problems.push(`${path}: additionalProperties: false`);
      if (node.additionalProperties !== undefined && node.properties !== undefined)
        problems.push(`${path}: properties and additionalProperties`);
      if (node['x-kubernetes-preserve-unknown-fields'] === false)
        problems.push(`${path}: preserve-unknown-fields false`);
      for (const branch of (node.oneOf ?? []) as JsonObject[]) {
        if (Object.keys(branch).join() !== 'required') problems.push(`${path}: oneOf branch with more than required`);
      }
      const isRootMeta = /^root\.(apiVersion|kind)$/.test(path);
      if (node.type === 'string' && typeof node.maxLength !== 'number' && !isRootMeta)
        problems.push(`${path}: string without maxLength`);
      if (node.type === 'array' && typeof node.maxItems !== 'number') problems.push(`${path}: array without maxItems`);
      if (node.type === 'array' && node.items === undefined) problems.push(`${path}: array without items`);
      if (node.default !== undefined && /^root\.(apiVersion|kind|metadata)/.test(path))
        problems.push(`${path}: default in metadata`);
    }
    expect(problems).toEqual([]);
  });

  it('keeps zod constraints and defaults', () => {
    const features = (specSchema.properties as any).features;
    expect(features).toMatchObject({ type: 'array', minItems: 1, maxItems: 200 });
    expect(features.items.properties.name).toMatchObject({
      type: 'string',
      maxLength: 48,
      pattern: IDENTIFIER_PATTERN.source,
    });
    expect(features.items.properties.aggregate.properties.limit).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: 1000,
    });
    expect(features.items.required).toEqual(['name', 'type']);
    const props = specSchema.properties as any;
    expect(specSchema.required).toEqual(['entity', 'source', 'features']);
    expect(props.deletionPolicy).toMatchObject({ enum: ['Retain', 'Delete'], default: 'Retain' });
    expect(props.consumer.default).toEqual({ replicas: 1, batchSize: 5000, resources: {} });
    // Kubernetes' ResourceRequirements: limits and requests only, quantities as int-or-string.
    const quantity = {
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      pattern: expect.any(String),
      'x-kubernetes-int-or-string': true,
    };
    expect(props.consumer.properties.resources).toMatchObject({
      type: 'object',
      properties: {
        limits: { type: 'object', additionalProperties: quantity },
        requests: { type: 'object', additionalProperties: quantity },
      },
    });
    expect(props.consumer.properties.resources['x-kubernetes-preserve-unknown-fields']).toBeUndefined();
    expect(props.history.properties.enabled.default).toBe(false);
    for (const predicate of [props.source.properties.filter, features.items.properties.aggregate.properties.where]) {
      expect(predicate.oneOf).toEqual([{ required: ['equals'] }, { required: ['in'] }]);
      expect(predicate.properties.equals).toEqual(
        expect.objectContaining({ 'x-kubernetes-preserve-unknown-fields': true }),
      );
      expect(predicate.properties.equals.type).toBeUndefined();
      expect(predicate.properties.in).toMatchObject({
        type: 'array',
        minItems: 1,
        maxItems: 256,
        items: { 'x-kubernetes-preserve-unknown-fields': true },
      });
    }
  });

  it('uses only RE2-compatible patterns, in the CRD and everywhere in schema.ts', () => {
    const patterns = new Map<string, string>();
    for (const [path, node] of allNodes(openAPIV3Schema, 'root'))
      if (typeof node.pattern === 'string') patterns.set(node.pattern, path);
    // Everything schema.ts validates with, metadata's DNS names included.
    const whole = z.toJSONSchema(featureGroupSchema, { target: 'openapi-3.0', io: 'input', reused: 'inline' });
    JSON.stringify(whole, (key, value: unknown) => {
      if (key === 'pattern' && typeof value === 'string') patterns.set(value, patterns.get(value) ?? 'schema.ts');
      return value;
    });
    expect(patterns.size).toBeGreaterThanOrEqual(6);
    const problems = [...patterns].flatMap(([pattern, where]) =>
      re2Problems(pattern).map((p) => `${where}: ${p} in ${pattern}`),
    );
    expect(problems).toEqual([]);
    expect(re2Problems('^[a-z](?:[a-z0-9]|_(?!_))*$')).toEqual(['lookahead']);
    expect(re2Problems('(?<=a)b')).toEqual(['lookbehind']);
    expect(re2Problems('(a)\\1')).toEqual(['backreference']);
  });

  it('keeps the meaning of the identifier pattern without a lookahead', () => {
    for (const ok of ['a', 'user', 'clicks_1h', 'a_b_c', 'x9']) expect(IDENTIFIER_PATTERN.test(ok)).toBe(true);
    for (const bad of ['', '_a', '1a', 'A', 'a__b', 'x__ts', 'a_', 'a-b', 'a b'])
      expect(IDENTIFIER_PATTERN.test(bad)).toBe(false);
  });

  it('bounds pattern-only strings by what the pattern allows', () => {
    expect(IMPLIED_MAX_LENGTH.get(TOPIC_PATTERN.source)).toBe(249);
    expect(TOPIC_PATTERN.test('t'.repeat(249))).toBe(true);
    expect(TOPIC_PATTERN.test('t'.repeat(250))).toBe(false);
    expect(IMPLIED_MAX_LENGTH.get(DURATION_PATTERN.source)).toBe(11);
    expect(DURATION_PATTERN.test('999999999ms')).toBe(true);
    expect(DURATION_PATTERN.test('1000000000s')).toBe(false);
  });
});

describe('the CRD CEL rules', () => {
  const rulesAt = (path: string) => {
    const node = allNodes(openAPIV3Schema, 'root').find(([p]) => p === path)?.[1];
    return (node?.['x-kubernetes-validations'] ?? []) as Array<{
      rule: string;
      message: string;
      fieldPath?: string;
      reason?: string;
    }>;
  };

  it('reads what the zod refinements decide', () => {
    expect(deriveAggregateRules()).toEqual({
      needsField: ['sum', 'avg', 'min', 'max', 'last_n'],
      needsLimit: ['last_n'],
      forbidsLimit: ['count', 'sum', 'avg', 'min', 'max'],
      resultTypes: {
        count: ['int64'],
        sum: ['int64', 'float64'],
        avg: ['float64'],
        min: ['int64', 'float64', 'timestamp'],
        max: ['int64', 'float64', 'timestamp'],
        last_n: ['json'],
      },
    });
  });

  it('puts one rule where each zod refinement is', () => {
    // Unique names: a list map keyed by name, which the API server enforces (no CEL rule).
    expect(rulesAt('root.spec.features')).toEqual([]);
    expect(specSchema).toMatchObject({
      properties: { features: { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] } },
    });
    expect(rulesAt('root.spec.features[]').map((r) => r.rule)).toEqual([
      'has(self.from) != has(self.aggregate)',
      'self.type == oldSelf.type',
      "!has(self.aggregate) || (self.aggregate.fn == 'count' && self.type == 'int64') || (self.aggregate.fn == 'sum' && self.type in ['int64', 'float64']) || (self.aggregate.fn == 'avg' && self.type == 'float64') || (self.aggregate.fn in ['min', 'max'] && self.type in ['int64', 'float64', 'timestamp']) || (self.aggregate.fn == 'last_n' && self.type == 'json')",
    ]);
    expect(rulesAt('root.spec.features[].name').map((r) => r.rule)).toEqual(["!(self in ['entity_id'])"]);
    expect(rulesAt('root.spec.features[].aggregate')).toEqual([
      expect.objectContaining({ fieldPath: '.window', reason: 'FieldValueInvalid' }),
      expect.objectContaining({
        rule: "self.fn == 'count' || has(self.field)",
        fieldPath: '.field',
        reason: 'FieldValueRequired',
      }),
      expect.objectContaining({
        rule: "self.fn != 'last_n' || has(self.limit)",
        fieldPath: '.limit',
        reason: 'FieldValueRequired',
      }),
      expect.objectContaining({
        rule: "self.fn == 'last_n' || !has(self.limit)",
        fieldPath: '.limit',
        reason: 'FieldValueForbidden',
      }),
    ]);
    expect(rulesAt('root.spec.entity.name')).toEqual([]);
  });

  it('refers only to typed fields CEL can see, with one-line messages', () => {
    const celReserved = new Set([
      'true',
      'false',
      'null',
      'in',
      'as',
      'break',
      'const',
      'continue',
      'else',
      'for',
      'function',
      'if',
      'import',
      'let',
      'loop',
      'package',
      'namespace',
      'return',
      'var',
      'void',
      'while',
    ]);
    const problems: string[] = [];
    for (const [path, node] of allNodes(openAPIV3Schema, 'root')) {
      for (const { rule, message, fieldPath } of (node['x-kubernetes-validations'] ?? []) as Array<
        Record<string, string>
      >) {
        if (!message || /[\r\n]/.test(message) || /[\r\n]/.test(rule!))
          problems.push(`${path}: message must be one line`);
        if (node.type === undefined) problems.push(`${path}: rule on an untyped node`);
        // self.a.b → the properties a and a.b must exist and be typed (untyped ones are invisible to
        // CEL); self.all(...) and other macro calls are not fields.
        for (const match of rule!.matchAll(/\bself((?:\.[A-Za-z_]\w*)+)(?![\w(])/g)) {
          let target: JsonObject | undefined = node;
          for (const name of match[1]!.slice(1).split('.')) {
            target = (target?.properties as Record<string, JsonObject> | undefined)?.[name];
            if (!target || target.type === undefined)
              problems.push(`${path}: ${rule} reads ${name}, which CEL cannot see`);
            if (celReserved.has(name)) problems.push(`${path}: ${name} is a CEL reserved word`);
          }
        }
        if (fieldPath && !(node.properties as Record<string, unknown> | undefined)?.[fieldPath.replace(/^\./, '')])
          problems.push(`${path}: fieldPath ${fieldPath} is not a property`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('the generated OpenAPI schema', () => {
  const example = parse(readFileSync(join(root, 'examples/user-activity.yaml'), 'utf8'));
  const base = {
    entity: { name: 'user', keyField: 'entity_id' },
    source: { topic: 'raw-events' },
    features: [{ name: 'x', type: 'string', from: 'a' }],
  };

  it('accepts the shipped example', () => {
    const errors: string[] = [];
    validate(openAPIV3Schema, example, 'root', errors);
    expect(errors).toEqual([]);
  });

  it('accepts the design example, scalars of every kind included', () => {
    const spec = {
      ...base,
      source: {
        topic: 'raw-events',
        eventTimeField: 'timestamp',
        filter: { field: 'event_type', in: ['click', 2, true] },
      },
      features: [
        {
          name: 'clicks_1h',
          type: 'int64',
          aggregate: { fn: 'count', window: '1h', where: { field: 'action', equals: 'click' } },
        },
        {
          name: 'spend_7d',
          type: 'float64',
          aggregate: { fn: 'sum', field: 'amount', window: '7d', where: { field: 'vip', equals: true } },
        },
      ],
      ttl: '24h',
      history: { enabled: true, retention: '30d' },
      consumer: { replicas: 2, batchSize: 500, resources: { limits: { cpu: '1' } } },
      deletionPolicy: 'Delete',
    };
    expect(validateSpec(spec)).toEqual([]);
  });

  it.each([
    ['an unknown field', { ...base, extra: true }, 'unknown field "extra"'],
    [
      'a bad feature name',
      { ...base, features: [{ name: 'x__ts', type: 'string', from: 'a' }] },
      'spec.features[0].name: must match',
    ],
    [
      'a bad window',
      { ...base, features: [{ name: 'x', type: 'int64', aggregate: { fn: 'count', window: '1 hour' } }] },
      'window: must match',
    ],
    [
      'an unknown type',
      { ...base, features: [{ name: 'x', type: 'uuid', from: 'a' }] },
      'spec.features[0].type: not one of',
    ],
    ['no features', { ...base, features: [] }, 'needs at least 1 items'],
    [
      'both equals and in',
      { ...base, source: { topic: 't', filter: { field: 'a', equals: 1, in: [1] } } },
      'one and only one schema (oneOf), found 2',
    ],
    [
      'neither equals nor in',
      { ...base, source: { topic: 't', filter: { field: 'a' } } },
      'one and only one schema (oneOf), found 0',
    ],
    ['too many replicas', { ...base, consumer: { replicas: 65 } }, 'must be <= 64'],
  ])('refuses %s, as zod does', (_label, spec, expected) => {
    expect(validateSpec(spec).join('\n')).toContain(expected);
    expect(featureGroupSchema.shape.spec.safeParse(spec).success).toBe(false);
  });
});

describe('the structural rewrite', () => {
  it('refuses what a CRD cannot express', () => {
    const convert = (schema: z.ZodType) => () =>
      toStructural(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input' }) as JsonObject, 'x');
    expect(convert(z.object({ s: z.string() }))).toThrow('spec.x.s: a string needs maxLength');
    expect(convert(z.object({ a: z.array(z.number()) }))).toThrow('spec.x.a: an array needs maxItems');
    expect(convert(z.object({ u: z.union([z.object({ a: z.number() }), z.number()]) }))).toThrow(
      'only unions of scalars',
    );
    expect(convert(z.object({ s: z.string().max(3) }))).not.toThrow();
  });
});
