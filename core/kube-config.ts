import { Agent } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

type RequestContext = Parameters<KubeConfig['applySecurityAuthentication']>[0];

/**
 * A KubeConfig whose API calls reuse TLS connections. @kubernetes/client-node 1.x builds a new
 * https.Agent, so a new TLS handshake, for every request; under a burst of reconciles that
 * handshake was the operator's largest CPU cost. Agents here are kept per TLS identity (CA,
 * client certificate, server name), so rotated credentials still get a fresh agent.
 */
export class PooledKubeConfig extends KubeConfig {
  private readonly agents = new Map<string, Agent>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const created = context.getAgent();
    // Proxy agents and plain HTTP keep the library's own behaviour.
    if (!(created instanceof Agent) || created.constructor !== Agent) return;
    const options = created.options;
    const key = JSON.stringify(
      [options.ca, options.cert, options.key, options.pfx, options.rejectUnauthorized, options.servername].map((v) =>
        v === undefined ? null : typeof v === 'string' || typeof v === 'boolean' ? String(v) : JSON.stringify(v),
      ),
    );
    let pooled = this.agents.get(key);
    if (!pooled) {
      pooled = new Agent({ ...options, keepAlive: true, maxSockets: 32 });
      this.agents.set(key, pooled);
    }
    context.setAgent(pooled);
  }
}

/** In a pod: the service account; elsewhere: KUBECONFIG or ~/.kube/config. */
export function loadKubeConfig(): KubeConfig {
  const config = new PooledKubeConfig();
  config.loadFromDefault();
  return config;
}
