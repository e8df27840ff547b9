import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

const root = join(__dirname, '..', '..');

export function kubeConfig(): KubeConfig {
  const path = process.env.KUBECONFIG;
  if (!path) throw new Error('KUBECONFIG is not set: these tests need the real kube-apiserver (make test starts it)');
  const config = new KubeConfig();
  config.loadFromFile(path);
  return config;
}

let kubectlBinary: string | undefined;

/** The kubectl built with the test API server (test/servers/kube.sh), as a user would run it. */
function kubectlPath(): string {
  kubectlBinary ??= execFileSync('bash', [join(root, 'test/servers/kube.sh'), 'kubectl-path'], {
    encoding: 'utf8',
  }).trim();
  return kubectlBinary;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command-line tool from the repository root; never throws on a non-zero exit so tests can assert on it. */
export function runTool(
  binary: string,
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      binary,
      args,
      {
        cwd: root,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 256 * 1024 * 1024,
        env: options.env ?? process.env,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs kubectl against $KUBECONFIG. */
export function kubectl(args: string[], input?: string): Promise<KubectlResult> {
  const kubeconfig = process.env.KUBECONFIG;
  if (!kubeconfig)
    throw new Error('KUBECONFIG is not set: these tests need the real kube-apiserver (make test starts it)');
  return runTool(kubectlPath(), ['--kubeconfig', kubeconfig, ...args], { input, timeoutMs: 60_000 });
}

/** kubectl that must succeed; the error carries kubectl's own message. */
export async function kubectlOk(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0)
    throw new Error(
      `kubectl ${args.join(' ')} failed (${result.code}): ${(result.stderr || result.stdout).slice(0, 4000)}`,
    );
  return result.stdout;
}

/** Applies crds/featuregroup.yaml server-side and waits until the API server serves the kind. */
export async function installFeatureGroupCrd(): Promise<void> {
  await kubectlOk([
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager',
    'featurestore-tests',
    '-f',
    'crds/featuregroup.yaml',
  ]);
  await kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', 'crd/featuregroups.featurestore.dev']);
}
