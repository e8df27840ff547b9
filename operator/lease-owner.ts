import type { V1OwnerReference } from '@kubernetes/client-node';
import type { Logger } from '../core/logger';
import type { OperatorConfig } from './config';
import type { KubeClients } from './kube';

/**
 * The owner reference of the leader-election Lease: the operator's own ServiceAccount
 * (LEASE_OWNER_SERVICE_ACCOUNT, which the chart sets from the pod's spec), so the Lease goes when
 * the release does. Unset, or unreadable, the Lease has no owner and outlives an uninstall.
 */
export async function leaseOwner(
  kube: Pick<KubeClients, 'core'>,
  config: Pick<OperatorConfig, 'LEASE_OWNER_SERVICE_ACCOUNT' | 'LEASE_NAMESPACE'>,
  log: Logger,
): Promise<V1OwnerReference | undefined> {
  const name = config.LEASE_OWNER_SERVICE_ACCOUNT;
  if (!name) return undefined;
  try {
    const account = await kube.core.readNamespacedServiceAccount({ name, namespace: config.LEASE_NAMESPACE });
    const uid = account.metadata?.uid;
    if (!uid) throw new Error('the ServiceAccount has no uid');
    return { apiVersion: 'v1', kind: 'ServiceAccount', name, uid };
  } catch (error) {
    log.warn(
      { err: error, serviceAccount: name },
      'could not read the ServiceAccount that owns the leader Lease; the Lease will outlive an uninstall',
    );
    return undefined;
  }
}
