/**
 * `npm run bench:k8s`: berth's kubernetes runtime against raw client-node
 * doing the least any Job runner must (create the Job, wait for Complete,
 * read the pod's log, delete the Job), on the test cluster (.ci/k8s/start.sh),
 * in one run:
 *  - sequential: median POST→terminal through berth ÷ the raw median (target ≤ 1.10);
 *  - throughput: 32 runs at --max-parallel 8, raw time ÷ berth time (target ≥ 0.90);
 *  - API requests per run, from the API server's `apiserver_request_total`,
 *    less the cluster's own idle traffic: berth's against raw's, and for runs
 *    that last 15 s against runs that last none (flat: no polling).
 * Both sides wait through watches: raw on a Job watch, berth through its
 * `/events/` stream.
 */
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { BatchV1Api, CoreV1Api, KubeConfig, Watch, type V1Job } from '@kubernetes/client-node';
import { RunPhase } from '../src/model/types';
import { RunWatcher, type RunAnswer } from './run-watcher';
import { api, median, report, startBerth, pool, timed } from './support';

const KUBECONFIG = process.env.BERTH_BENCH_KUBECONFIG ?? process.env.BERTH_TEST_KUBECONFIG ?? '/var/lib/berth-k8s/admin.kubeconfig';
const IMAGE = process.env.BERTH_BENCH_IMAGE ?? 'berth-test/busybox:latest';
const COMMAND = ['sh', '-c', 'echo hello from the benchmark'];
const SEQUENTIAL = Number(process.env.BERTH_BENCH_SEQUENTIAL ?? 10);
const PARALLEL_RUNS = 32;
const MAX_PARALLEL = 8;
const LONG_RUNS = 4;
const LONG_SECONDS = 15;

const kc = new KubeConfig();
kc.loadFromFile(KUBECONFIG);
const batch = kc.makeApiClient(BatchV1Api);
const core = kc.makeApiClient(CoreV1Api);
const namespace = `bench-k8s-${randomBytes(3).toString('hex')}`;

/** Resolves raw Jobs' waiters when the Job watch says they completed. */
class JobWatcher {
  private readonly done = new Map<string, string>();
  private readonly waiters = new Map<string, () => void>();
  private abort?: AbortController;

  async open(): Promise<void> {
    this.abort = await new Watch(kc).watch(
      `/apis/batch/v1/namespaces/${namespace}/jobs`,
      { labelSelector: 'bench=raw' },
      (_phase, job: V1Job) => {
        const condition = job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
        const name = job.metadata?.name;
        if (!condition || !name || this.done.has(name)) return;
        this.done.set(name, condition.type);
        this.waiters.get(name)?.();
      },
      () => undefined,
    );
  }

  async wait(name: string, timeoutMs = 120_000): Promise<string> {
    if (!this.done.has(name)) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`job ${name} did not finish within ${timeoutMs} ms`)), timeoutMs);
        this.waiters.set(name, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.waiters.delete(name);
    }
    return this.done.get(name)!;
  }

  close(): void {
    this.abort?.abort();
  }
}

/** One run the raw way: the floor any Job runner has to pay. */
async function rawRun(jobs: JobWatcher): Promise<void> {
  const name = `raw-${randomBytes(4).toString('hex')}`;
  await batch.createNamespacedJob({
    namespace,
    body: {
      metadata: { name, labels: { bench: 'raw' } },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: { labels: { bench: 'raw' } },
          spec: {
            restartPolicy: 'Never',
            automountServiceAccountToken: false,
            containers: [{ name: 'run', image: IMAGE, imagePullPolicy: 'IfNotPresent', args: COMMAND }],
          },
        },
      },
    },
  });
  const outcome = await jobs.wait(name);
  if (outcome !== 'Complete') throw new Error(`raw job ${name} ended ${outcome}`);
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${name}` });
  await core.readNamespacedPodLog({ namespace, name: pods.items[0].metadata!.name! });
  await batch.deleteNamespacedJob({ namespace, name, propagationPolicy: 'Background' });
}

/** The API server's request counter, summed over every label. */
async function apiRequests(): Promise<number> {
  const options: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  const server = new URL(kc.getCurrentCluster()!.server);
  const text = await new Promise<string>((resolve, reject) => {
    const req = https.request({ ...options, hostname: server.hostname, port: server.port, path: '/metrics', method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics → ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith('apiserver_request_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}

/** API requests per second while nothing runs: node heartbeats, leases, controllers' resyncs. */
async function idleRate(seconds: number): Promise<number> {
  const before = await apiRequests();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return ((await apiRequests()) - before) / seconds;
}

/** Requests made during `fn` beyond the idle rate, per run. */
async function requestsPerRun(runs: number, idle: number, fn: () => Promise<void>): Promise<{ perRun: number; ms: number }> {
  const before = await apiRequests();
  const start = performance.now();
  await fn();
  const ms = performance.now() - start;
  const made = (await apiRequests()) - before - idle * (ms / 1000);
  return { perRun: made / runs, ms };
}

async function main(): Promise<void> {
  await apiRequests().catch((err: Error) => {
    throw new Error(`the test cluster does not answer at ${KUBECONFIG} (${err.message}); start it with bash .ci/k8s/start.sh`);
  });
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  console.log(`berth bench:k8s — namespace ${namespace}, image ${IMAGE}, ${SEQUENTIAL} sequential runs, ${PARALLEL_RUNS} runs at max-parallel ${MAX_PARALLEL}`);
  const jobs = new JobWatcher();
  await jobs.open();
  const berth = await startBerth(['--runtime', 'kubernetes', '--kubeconfig', KUBECONFIG, '--namespace', namespace, '--max-parallel', String(MAX_PARALLEL)]);
  const watcher = new RunWatcher();
  try {
    const appName = `bench-${randomBytes(3).toString('hex')}`;
    await api(`${berth.url}/apps/`, 'POST', { name: appName, image: IMAGE, command: COMMAND });
    await watcher.open(berth.url, appName);
    const berthRun = async (app = appName): Promise<void> => {
      const run = await api<RunAnswer>(`${berth.url}/apps/${app}/run/`, 'POST');
      const phase = await watcher.waitFinished(run.id, 120_000);
      if (phase !== RunPhase.Succeeded) throw new Error(`run ${run.id} ended ${phase}`);
    };
    // Warm both paths (the pause image, the page cache, berth's informers).
    await rawRun(jobs);
    await berthRun();

    const idle = await idleRate(10);
    report('cluster idle API requests', idle, '/s');

    const raw: number[] = [];
    const viaBerth: number[] = [];
    let rawRequests = 0;
    let berthRequests = 0;
    for (let i = 0; i < SEQUENTIAL; i++) {
      const r = await requestsPerRun(1, idle, () => rawRun(jobs));
      raw.push(r.ms);
      rawRequests += r.perRun;
      const b = await requestsPerRun(1, idle, () => berthRun());
      viaBerth.push(b.ms);
      berthRequests += b.perRun;
    }
    report('sequential: raw client-node median', median(raw), 'ms');
    report('sequential: berth POST→terminal median', median(viaBerth), 'ms');
    report('sequential: berth / raw', median(viaBerth) / median(raw), '', { op: '<=', limit: 1.1 });
    report('API requests per run: raw', rawRequests / SEQUENTIAL, '');
    report('API requests per run: berth', berthRequests / SEQUENTIAL, '');

    const rawTotal = await timed(() => pool(PARALLEL_RUNS, MAX_PARALLEL, () => rawRun(jobs)));
    const berthParallel = await requestsPerRun(PARALLEL_RUNS, idle, async () => {
      await pool(PARALLEL_RUNS, PARALLEL_RUNS, () => berthRun());
    });
    report(`throughput: raw ${PARALLEL_RUNS} runs, ${MAX_PARALLEL} at a time`, rawTotal, 'ms');
    report(`throughput: berth ${PARALLEL_RUNS} runs, --max-parallel ${MAX_PARALLEL}`, berthParallel.ms, 'ms');
    report('throughput: raw time / berth time', rawTotal / berthParallel.ms, '', { op: '>=', limit: 0.9 });
    report(`API requests per run: berth, ${PARALLEL_RUNS} at once`, berthParallel.perRun, '');

    // Runs that last: with watches, a longer run costs the API server nothing more.
    const longApp = `bench-long-${randomBytes(3).toString('hex')}`;
    await api(`${berth.url}/apps/`, 'POST', { name: longApp, image: IMAGE, command: ['sh', '-c', `sleep ${LONG_SECONDS}; echo done`] });
    const longWatcher = new RunWatcher();
    await longWatcher.open(berth.url, longApp);
    try {
      const long = await requestsPerRun(LONG_RUNS, idle, async () => {
        const runs = await Promise.all(Array.from({ length: LONG_RUNS }, () => api<RunAnswer>(`${berth.url}/apps/${longApp}/run/`, 'POST')));
        await Promise.all(runs.map((run) => longWatcher.waitFinished(run.id, 120_000)));
      });
      report(`API requests per run: berth, runs of ${LONG_SECONDS} s`, long.perRun, '');
      report(`API requests per run: ${LONG_SECONDS} s runs / instant runs`, long.perRun / (berthRequests / SEQUENTIAL), '', { op: '<=', limit: 1.1 });
    } finally {
      longWatcher.close();
    }
  } finally {
    watcher.close();
    jobs.close();
    await berth.stop();
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(`bench:k8s failed: ${(err as Error).message}`);
  process.exit(1);
});
