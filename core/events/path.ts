export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Compiles a dotted path (`user.id`) once into a getter, so per-event work is a few lookups. */
export function compilePath(path: string): (event: JsonObject) => JsonValue | undefined {
  const keys = path.split('.');
  if (keys.length === 1) {
    const key = keys[0] as string;
    return (event) => (Object.prototype.hasOwnProperty.call(event, key) ? event[key] : undefined);
  }
  return (event) => {
    let current: JsonValue | undefined = event;
    for (const key of keys) {
      if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
      if (!Object.prototype.hasOwnProperty.call(current, key)) return undefined;
      current = current[key];
    }
    return current;
  };
}

export function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
