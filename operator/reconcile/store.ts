import type { Pool } from 'pg';
import type { FeatureGroupSpec, GroupRef } from '../../core/featuregroup/schema';
import { consumerGroupFor } from '../../core/kafka';
import { applyGrants, dropWriterRole } from '../../core/storage/roles';
import { applyStore, dropStore, StoreConflictError } from '../../core/storage/store';
import { tableNameFor } from '../../core/storage/identifiers';
import type { ConditionInput } from '../conditions';

export interface StoreOutcome {
  condition: ConditionInput;
  table: string;
  /** False when the spec cannot be applied: the consumer must not be rolled to it either. */
  applied: boolean;
}

/** Tables, registry row and grants for one group; a type change is refused and alters nothing. */
export async function reconcileStore(pool: Pool, ref: GroupRef, spec: FeatureGroupSpec, generation: number, writerPassword: string): Promise<StoreOutcome> {
  const type = 'StoreReady' as const;
  try {
    const { table } = await applyStore(pool, ref, spec, generation);
    const writer = await applyGrants(pool, table, writerPassword);
    const features = spec.features.filter((f) => f.from !== undefined).length;
    return { table, applied: true, condition: { type, status: 'True', reason: 'Provisioned', message: `table features.${table} holds ${features} value features; consumer role ${writer}` } };
  } catch (error) {
    if (!(error instanceof StoreConflictError)) throw error;
    return { table: tableNameFor(ref), applied: false, condition: { type, status: 'False', reason: 'TypeChangeRefused', message: `${error.message}; nothing was altered` } };
  }
}

/** Deletion: `Delete` drops the data; `Retain` keeps table and registry row for a later group. */
export async function finalizeStore(pool: Pool, ref: GroupRef, deletionPolicy: 'Retain' | 'Delete'): Promise<void> {
  if (deletionPolicy === 'Delete') await dropStore(pool, ref, consumerGroupFor(ref));
  await dropWriterRole(pool, tableNameFor(ref));
}
