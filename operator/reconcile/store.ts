import type { Pool } from 'pg';
import { groupTables, type CompiledGroup } from '../../core/featuregroup/compiled';
import type { GroupRef } from '../../core/featuregroup/schema';
import { consumerGroupFor } from '../../core/kafka';
import { applyGrants, dropWriterRole } from '../../core/storage/roles';
import { applyStore, dropStore, StoreConflictError } from '../../core/storage/store';
import type { ConditionInput } from '../conditions';

export interface StoreOutcome {
  condition: ConditionInput;
  table: string;
  /** False when the spec cannot be applied: the consumer must not be rolled to it either. */
  applied: boolean;
}

/** Tables, registry row and grants for one group; a type change is refused and alters nothing. */
export async function reconcileStore(
  pool: Pool,
  group: CompiledGroup,
  generation: number,
  writerPassword: string,
): Promise<StoreOutcome> {
  const type = 'StoreReady' as const;
  try {
    const { table } = await applyStore(pool, group, generation);
    const writer = await applyGrants(pool, group.tables, writerPassword);
    const features = group.values.length;
    return {
      table,
      applied: true,
      condition: {
        type,
        status: 'True',
        reason: 'Provisioned',
        message: `table features.${table} holds ${features} value features; consumer role ${writer}`,
      },
    };
  } catch (error) {
    if (!(error instanceof StoreConflictError)) throw error;
    return {
      table: group.tables.values.name,
      applied: false,
      condition: {
        type,
        status: 'False',
        reason: error.reason,
        message: `${error.message}; nothing was altered`,
      },
    };
  }
}

/** Deletion: `Delete` drops the data; `Retain` keeps table and registry row for a later group. */
export async function finalizeStore(pool: Pool, ref: GroupRef, deletionPolicy: 'Retain' | 'Delete'): Promise<void> {
  if (deletionPolicy === 'Delete') await dropStore(pool, ref, consumerGroupFor(ref));
  await dropWriterRole(pool, groupTables(ref).values.name);
}
