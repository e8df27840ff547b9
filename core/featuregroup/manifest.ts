import { parseAllDocuments } from 'yaml';
import { describeIssues, featureGroupSchema, KIND, type FeatureGroup } from './schema';

/** Parses FeatureGroup objects out of a multi-document YAML manifest, skipping other kinds. */
export function parseFeatureGroups(text: string, source = 'manifest'): FeatureGroup[] {
  const groups: FeatureGroup[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0]!.message}`);
    const object: unknown = doc.toJS();
    if (object === null || typeof object !== 'object' || (object as { kind?: unknown }).kind !== KIND) continue;
    const parsed = featureGroupSchema.safeParse(object);
    if (!parsed.success) throw new Error(`${source}: invalid FeatureGroup: ${describeIssues(parsed.error)}`);
    groups.push(parsed.data);
  }
  return groups;
}
