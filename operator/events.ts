import { createHash } from 'node:crypto';
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../core/logger';
import { isConflict, isNotFound } from './kube';
import type { FeatureGroupObject } from './resource';

export type EventType = 'Normal' | 'Warning';

/** Event names remembered with their count; older ones are looked up again if they recur. */
const REMEMBERED = 10_000;
const MAX_NAME = 253;

/**
 * Kubernetes Events on FeatureGroups, aggregated as client-go's recorder does: a repeat of the
 * same event (same object, type, reason and message) raises the count and lastTimestamp of one
 * Event object instead of creating another, so a retry loop shows as `x12 over 3m`.
 */
export class EventRecorder {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async record(group: FeatureGroupObject, type: EventType, reason: string, message: string): Promise<void> {
    const { namespace, name: groupName, uid } = group.metadata;
    const digest = createHash('sha256').update(`${uid}\n${type}\n${reason}\n${message}`).digest('hex').slice(0, 16);
    const name = `${groupName.slice(0, MAX_NAME - digest.length - 1)}.${digest}`;
    const now = this.now();
    try {
      const known = this.counts.get(name);
      if (known !== undefined) {
        const count = await this.bump(namespace, name, known, now).catch((error: unknown) => {
          // Events expire (an hour by default): start over.
          if (isNotFound(error)) return undefined;
          throw error;
        });
        if (count !== undefined) {
          this.remember(name, count);
          return;
        }
      }
      const event: CoreV1Event = {
        metadata: { name, namespace },
        involvedObject: { apiVersion: group.apiVersion, kind: group.kind, name: groupName, namespace, uid },
        type,
        reason,
        message,
        source: { component: 'featurestore-operator' },
        reportingComponent: 'featurestore-operator',
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      };
      try {
        await this.core.createNamespacedEvent({ namespace, body: event });
        this.remember(name, 1);
      } catch (error) {
        if (!isConflict(error)) throw error;
        // Recorded before, by this process before a restart or by the previous leader.
        const existing = await this.core.readNamespacedEvent({ namespace, name });
        this.remember(name, await this.bump(namespace, name, existing.count ?? 1, now));
      }
    } catch (error) {
      this.log.warn({ err: error, reason }, 'could not record event');
    }
  }

  private async bump(namespace: string, name: string, count: number, now: Date): Promise<number> {
    await this.core.patchNamespacedEvent(
      { namespace, name, body: { count: count + 1, lastTimestamp: now } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    return count + 1;
  }

  private remember(name: string, count: number): void {
    this.counts.delete(name);
    this.counts.set(name, count);
    if (this.counts.size > REMEMBERED) this.counts.delete(this.counts.keys().next().value!);
  }
}
