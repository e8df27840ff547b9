import type { CompiledGroup } from '../featuregroup/compiled';
import { compilePath, type JsonObject, type JsonValue } from './path';

/**
 * Where an accepted event goes and how it is keyed: every topic a registered group reads, plus an
 * allowlist for topics no group reads yet. A record is keyed by the entity key of the groups on its
 * topic, so one entity's events stay on one partition, in order ("ties: the later offset wins"
 * compares offsets of one partition only).
 */
export interface TopicRoute {
  topic: string;
  /** The entity key field of the groups on this topic (`entity.keyField`), or the default one. */
  keyField: string;
  key: (event: JsonObject) => JsonValue | undefined;
  /** The groups that read the topic (`namespace/name`); empty for an allowlisted topic. */
  groups: string[];
}

export interface TopicRouting {
  routes: ReadonlyMap<string, TopicRoute>;
  /**
   * Groups whose key field differs from the one their topic is keyed by. The operator refuses such
   * a group before it is registered; rows written before that rule are reported here, not obeyed.
   */
  conflicts: string[];
}

/** Groups on one topic share the key of the first of them by `namespace/name`. */
export function topicRouting(
  groups: readonly CompiledGroup[],
  allowlist: readonly string[],
  defaultKeyField: string,
): TopicRouting {
  const getters = new Map<string, TopicRoute['key']>();
  const getter = (field: string): TopicRoute['key'] => {
    let get = getters.get(field);
    if (!get) getters.set(field, (get = compilePath(field)));
    return get;
  };
  const routes = new Map<string, TopicRoute>();
  const conflicts: string[] = [];
  for (const group of [...groups].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const { topic } = group.spec.source;
    const keyField = group.spec.entity.keyField;
    const route = routes.get(topic);
    if (!route) {
      routes.set(topic, { topic, keyField, key: getter(keyField), groups: [group.id] });
    } else if (route.keyField === keyField) {
      route.groups.push(group.id);
    } else {
      conflicts.push(
        `${group.id} keys topic ${topic} by ${keyField}, but ${route.groups[0]} keys it by ${route.keyField}: records are keyed by ${route.keyField}`,
      );
    }
  }
  for (const topic of allowlist) {
    if (!routes.has(topic))
      routes.set(topic, { topic, keyField: defaultKeyField, key: getter(defaultKeyField), groups: [] });
  }
  return { routes, conflicts };
}
