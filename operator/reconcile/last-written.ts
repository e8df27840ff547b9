/**
 * What this process last wrote of each group, for the reconciles that follow: the informer's copy
 * of our own status write can lag behind them. Keyed by namespace/name and valid for one uid only,
 * so a group deleted and created again under its name starts afresh.
 */
export class LastWritten<T> {
  private readonly byKey = new Map<string, { uid: string; value: T }>();

  get(key: string, uid: string): T | undefined {
    const entry = this.byKey.get(key);
    return entry?.uid === uid ? entry.value : undefined;
  }

  set(key: string, uid: string, value: T): void {
    this.byKey.set(key, { uid, value });
  }

  delete(key: string): void {
    this.byKey.delete(key);
  }
}
