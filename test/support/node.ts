/**
 * Driving the test node (test/servers/node.sh) and the platform on it (test/servers/pods.sh) from
 * jest: scripts, kubectl, the in-node client (pods-client.mjs) and the check that nothing of the
 * node is left on the machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './services';

export const repoRoot = join(__dirname, '..', '..');
export const nodeScript = join(repoRoot, 'test/servers/node.sh');
export const podsScript = join(repoRoot, 'test/servers/pods.sh');
export const imageScript = join(repoRoot, 'test/servers/image.sh');
export const nodeState = join(repoRoot, '.local', 'node');
const client = join(repoRoot, 'test/support/pods-client.mjs');

/** Runs a bash script; its stdout, or an error with the end of its stderr. */
export function run(script: string, ...args: string[]): string {
  const result = spawnSync('bash', [script, ...args], { encoding: 'utf8', timeout: 1_500_000 });
  if (result.status !== 0)
    throw new Error(`${script} ${args.join(' ')} failed (exit ${result.status}):\n${result.stderr.slice(-4000)}`);
  return result.stdout;
}

export const kubectl = (...args: string[]) => run(nodeScript, 'kubectl', ...args);

/** kubectl apply of manifests given as objects; the exit status. */
export const apply = (...manifests: object[]) =>
  spawnSync('bash', [nodeScript, 'kubectl', 'apply', '-f', '-'], {
    input: manifests.map((m) => JSON.stringify(m)).join('\n'),
    encoding: 'utf8',
  }).status;

/** A run-to-completion pod's phase once it ended, and what it printed. */
export async function outcome(pod: string, namespace = 'default'): Promise<[string, string]> {
  const phase = await eventually(async () => {
    const p = kubectl('-n', namespace, 'get', 'pod', pod, '-o', 'jsonpath={.status.phase}').trim();
    return p === 'Succeeded' || p === 'Failed' ? p : undefined;
  }, `pod ${pod} to finish`);
  return [phase, kubectl('-n', namespace, 'logs', pod).trim()];
}

/** A pod of IMAGE that runs `node -e SCRIPT` once, with ENV; `outcome` reads how it ended. */
export const scriptPod = (name: string, image: string, script: string, env: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  spec: {
    restartPolicy: 'Never',
    containers: [
      {
        name: 'script',
        image,
        imagePullPolicy: 'Never',
        env: Object.entries(env).map(([n, value]) => ({ name: n, value })),
        command: ['node', '-e', script],
      },
    ],
  },
});

/** `node.sh env`: the node's Postgres, Kafka and registry, as its pods reach them. */
export function nodeEnv(): Record<string, string> {
  return Object.fromEntries(
    run(nodeScript, 'env')
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

/** A Service's ClusterIP, as clients inside the node's namespace reach it. */
export const clusterIp = (namespace: string, service: string) =>
  kubectl('-n', namespace, 'get', 'service', service, '-o', 'jsonpath={.spec.clusterIP}').trim();

/**
 * Runs pods-client.mjs inside the node's network namespace; resolves with its JSON result.
 * onProgress sees each progress line it writes to stderr.
 */
export function inNode<T>(args: string[], onProgress?: (line: string) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [nodeScript, 'exec', process.execPath, client, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      err += c;
      if (onProgress) for (const line of c.split('\n').filter(Boolean)) onProgress(line);
    });
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(out) as T);
      else reject(new Error(`pods-client ${args[0] ?? ''} exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

const netnsNames = () =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n): n is string => Boolean(n));

/** containerd's cgroups (its namespace k8s.io in every hierarchy). */
const containerCgroups = () =>
  readdirSync('/sys/fs/cgroup')
    .map((hierarchy) => join('/sys/fs/cgroup', hierarchy, 'k8s.io'))
    .filter((dir) => existsSync(dir));

interface MachineState {
  namespaces: string[];
  cgroups: string[];
}

/** The machine's network namespaces and container cgroups now, to compare with leftovers() after stop. */
export const machineBefore = (): MachineState => ({ namespaces: netnsNames(), cgroups: containerCgroups() });

/** What of the node is still on the machine: empty lists when stop removed everything. */
export function leftovers(before: MachineState) {
  const processes = spawnSync('pgrep', ['-fa', nodeState], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  const shims = spawnSync('pgrep', ['-fa', 'containerd-shim-runc-v2'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.includes(nodeState));
  // Containers that outlived their runtime: processes in containerd's cgroups, when it was ours.
  const containers = before.cgroups.length
    ? []
    : readdirSync('/proc')
        .filter((pid) => /^\d+$/.test(pid))
        .filter((pid) => {
          try {
            return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(':/k8s.io/');
          } catch {
            return false; // ended meanwhile
          }
        })
        .map((pid) => `pid ${pid} in a container cgroup`);
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(nodeState));
  const interfaces = spawnSync('ip', ['-br', 'link'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => /^(fs-|veth)/.test(l));
  const iptables = spawnSync('iptables-save', [], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.includes('KUBE') || l.includes('CNI'));
  const nft = spawnSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
  if (nft.status === 0) iptables.push(...nft.stdout.split('\n').filter((l) => /kube|cni/i.test(l)));
  return {
    namespaces: netnsNames().filter((ns) => !before.namespaces.includes(ns)),
    cgroups: containerCgroups().filter((dir) => !before.cgroups.includes(dir)),
    processes: [...processes, ...shims, ...containers],
    mounts,
    interfaces,
    iptables,
  };
}

export const nothingLeft = { namespaces: [], cgroups: [], processes: [], mounts: [], interfaces: [], iptables: [] };
