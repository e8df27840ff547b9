/**
 * A real node (test/servers/node.sh): etcd, kube-apiserver, containerd + runc, kubelet, scheduler
 * and controller-manager inside a network namespace of their own. A pod of the product image
 * (built with buildah, loaded into the node's containerd) is scheduled, runs as the image's user
 * and answers HTTP on its pod IP, through a Service (kube-proxy) and by the Service's DNS name from
 * another pod (CoreDNS); a pod reaches the node's own Postgres and Kafka. After stop nothing of it is left on
 * the machine: no process, mount, network namespace or iptables rule.
 * The first run builds kubelet and friends from the Go module proxy (a few minutes).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../support/services';
import {
  apply,
  imageScript,
  kubectl,
  leftovers,
  machineBefore,
  nodeEnv,
  nodeScript,
  nodeState,
  nothingLeft,
  outcome,
  run,
  scriptPod,
} from '../support/node';

describe('a real node', () => {
  const before = machineBefore();
  let startSeconds = 0;

  beforeAll(() => {
    run(nodeScript, 'build');
    const t0 = Date.now();
    run(nodeScript, 'start');
    startSeconds = (Date.now() - t0) / 1000;
    console.log(`node: warm start to Ready in ${startSeconds.toFixed(1)} s`);
  });

  afterAll(() => {
    spawnSync('bash', [nodeScript, 'stop'], { encoding: 'utf8', timeout: 300_000 });
  });

  it('runs a pod of the product image, as its user, answering on its pod IP, through a Service and by its DNS name from another pod, inside the namespace', async () => {
    run(imageScript, 'build');
    run(nodeScript, 'load-image', run(imageScript, 'oci-archive').trim());
    const image = run(imageScript, 'tag').trim();
    const manifest = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'image-probe', namespace: 'default', labels: { probe: 'image' } },
      spec: {
        containers: [
          {
            name: 'probe',
            image,
            imagePullPolicy: 'Never',
            command: [
              'node',
              '-e',
              "require('http').createServer((q, s) => s.end('ok ' + process.getuid())).listen(8080)",
            ],
            readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
          },
        ],
      },
    };
    expect(apply(manifest)).toBe(0);
    const ip = await eventually(async () => {
      const out = kubectl(
        'get',
        'pod',
        'image-probe',
        '-o',
        'jsonpath={.status.podIP} {.status.conditions[?(@.type=="Ready")].status}',
      ).trim();
      const [podIp, ready] = out.split(' ');
      return ready === 'True' ? podIp : undefined;
    }, 'the pod to be Ready');
    expect(kubectl('get', 'pod', 'image-probe', '-o', 'jsonpath={.spec.nodeName}')).toBe('fs-node');
    const answer = run(nodeScript, 'exec', 'curl', '-s', '--max-time', '10', `http://${ip!}:8080/`);
    expect(answer).toBe('ok 10001');
    // Through a Service: kube-proxy's rules, inside the namespace.
    const service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'image-probe', namespace: 'default' },
      spec: { selector: { probe: 'image' }, ports: [{ port: 80, targetPort: 8080 }] },
    };
    expect(apply(service)).toBe(0);
    const clusterIp = kubectl('get', 'service', 'image-probe', '-o', 'jsonpath={.spec.clusterIP}').trim();
    const viaService = await eventually(async () => {
      const r = spawnSync('bash', [nodeScript, 'exec', 'curl', '-s', '--max-time', '5', `http://${clusterIp}/`], {
        encoding: 'utf8',
      });
      return r.status === 0 && r.stdout ? r.stdout : undefined;
    }, 'the Service to answer');
    expect(viaService).toBe('ok 10001');
    // By DNS name from a pod: CoreDNS on the node, the in-cluster REST of the design.
    const byName = scriptPod(
      'by-name',
      image,
      "require('http').get('http://image-probe.default.svc.cluster.local/', (r) => { let b = ''; r.on('data', (c) => (b += c)); r.on('end', () => console.log(b)); }).on('error', (e) => { console.error(e.message); process.exit(1); });",
    );
    expect(apply(byName)).toBe(0);
    expect(await outcome('by-name')).toEqual(['Succeeded', 'ok 10001']);
    // The pod network exists inside the namespace only: the machine itself has no route into it.
    expect(spawnSync('ip', ['-br', 'addr'], { encoding: 'utf8' }).stdout).not.toContain('10.214.');
  });

  it("a pod of the image reaches the node's own Postgres and Kafka, on the node's address", async () => {
    const { DATABASE_URL, KAFKA_BROKERS } = nodeEnv();
    const script =
      "const { Pool } = require('pg'); const { Kafka, logLevel } = require('kafkajs');" +
      '(async () => { const pool = new Pool({ connectionString: process.env.DATABASE_URL });' +
      " const one = (await pool.query('SELECT 1 AS one')).rows[0].one; await pool.end();" +
      ' const admin = new Kafka({ brokers: [process.env.KAFKA_BROKERS], logLevel: logLevel.NOTHING }).admin();' +
      " await admin.connect(); await admin.listTopics(); await admin.disconnect(); console.log('db ' + one + ' kafka ok'); })()" +
      '.catch((e) => { console.error(e.message); process.exit(1); });';
    const pod = scriptPod('reach', run(imageScript, 'tag').trim(), script, {
      DATABASE_URL: DATABASE_URL!,
      KAFKA_BROKERS: KAFKA_BROKERS!,
    });
    expect(apply(pod)).toBe(0);
    expect(await outcome('reach')).toEqual(['Succeeded', 'db 1 kafka ok']);
  });

  it('after an interrupted run (every node process killed with SIGKILL, its pods left running), start clears it and the node comes up Ready again', () => {
    const pids = ['containerd', 'kubelet', 'kube-proxy', 'kube-scheduler', 'kube-controller-manager', 'coredns'].map(
      (name) => Number(readFileSync(join(nodeState, `${name}.pid`), 'utf8')),
    );
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    // The pods' containers outlive their runtime: shims and their processes are still there.
    expect(spawnSync('pgrep', ['-f', `containerd-shim-runc-v2 .*${nodeState}`]).status).toBe(0);
    run(nodeScript, 'start');
    expect(spawnSync('bash', [nodeScript, 'status']).status).toBe(0);
  });

  it('stop leaves nothing behind: processes, mounts, network namespaces, interfaces, iptables rules', () => {
    run(nodeScript, 'stop');
    expect(leftovers(before)).toEqual(nothingLeft);
  });
});
