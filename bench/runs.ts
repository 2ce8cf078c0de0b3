/**
 * `npm run bench:runs`: berth against raw dockerode doing the least any
 * executor must (create, start, wait, read logs, remove), on the same local
 * image and the same network mode, in one run. For each mode in
 * BERTH_BENCH_NETWORKS (default `bridge,none`: the engine's bridge, whose
 * veth setup is a large share of a start, and no network at all):
 *  - sequential: median time from `POST …/run/` to the run being terminal,
 *    divided by the raw median (target ≤ 0.80);
 *  - throughput: 64 runs at --max-parallel 8, raw time / berth time (target ≥ 1.10);
 *  - berth server CPU time per run, in both.
 * Then the RSS of the server once 10,000 finished runs are in the store (target < 150 MB).
 * A mode the engine cannot run (a bridge whose interface is gone) is reported and skipped.
 */
import path from 'node:path';
import { requestRun } from '../src/controller/run-requests';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { Store } from '../src/store/store';
import { RunPhase } from '../src/model/types';
import { api, cpuMs, median, report, rssMb, startBerth, pool, timed, type BerthProcess } from './support';
import { RunWatcher, type RunAnswer } from './run-watcher';

const IMAGE = process.env.BERTH_BENCH_IMAGE ?? 'berth-test/busybox:latest';
const COMMAND = ['sh', '-c', 'echo hello from the benchmark'];
const SEQUENTIAL = Number(process.env.BERTH_BENCH_SEQUENTIAL ?? 20);
const PARALLEL_RUNS = Number(process.env.BERTH_BENCH_PARALLEL_RUNS ?? 64);
const MAX_PARALLEL = 8;
const HISTORY = Number(process.env.BERTH_BENCH_HISTORY ?? 10_000);
const BENCH_LABEL = 'berth.bench';

const NETWORKS = (process.env.BERTH_BENCH_NETWORKS ?? 'bridge,none')
  .split(',')
  .map((mode) => mode.trim())
  .filter(Boolean);

const docker = new Docker();

/** One run the raw way, on `network` (`bridge` or `none`): the floor any executor has to pay. */
async function rawRun(network: string): Promise<void> {
  const container = await docker.createContainer({
    Image: IMAGE,
    Cmd: COMMAND,
    Labels: { [BENCH_LABEL]: 'raw' },
    HostConfig: { NetworkMode: network },
  });
  await container.start();
  await container.wait();
  await container.logs({ stdout: true, stderr: true, follow: false });
  await container.remove({ force: true });
}

async function seedHistory(dbFile: string, runs: number): Promise<void> {
  const store = await Store.open(dbFile);
  const app = await store.createApp({
    name: `history-${randomBytes(3).toString('hex')}`,
    spec: {
      image: IMAGE,
      command: COMMAND,
      env: {},
      retries: 0,
      concurrencyPolicy: 'Allow',
      imagePullPolicy: 'IfNotPresent',
      resources: {},
      historyLimit: runs,
    },
    source: 'api',
  });
  const now = new Date().toISOString();
  await pool(runs, 16, async () => {
    const { run } = await requestRun(store, app);
    await store.updateRunStatus(run, {
      phase: RunPhase.Succeeded,
      reason: 'Completed',
      exitCode: 0,
      attempts: 1,
      startedAt: now,
      finishedAt: now,
    });
    await store.setLogs(run.id, { content: 'hello from the benchmark\n', droppedBytes: 0 });
  });
  await store.close();
}

/**
 * One network mode, like with like: raw containers on `network`, berth runs
 * of an App whose `spec.network` asks for the same (`default` is the
 * server's default, the engine's bridge).
 */
async function compare(berth: BerthProcess, network: string): Promise<void> {
  try {
    // Warms the image layers and page cache, and finds out whether the engine can run this mode at all.
    await rawRun(network);
  } catch (error) {
    console.log(`[${network}] skipped: the engine cannot run a raw container on it: ${(error as Error).message}`);
    return;
  }
  const appName = `bench-${network}-${randomBytes(3).toString('hex')}`;
  const manifest = {
    apiVersion: 'berth.dev/v1',
    kind: 'App',
    metadata: { name: appName },
    spec: { image: IMAGE, command: COMMAND, network: network === 'bridge' ? 'default' : network },
  };
  await api(`${berth.url}/apps/`, 'POST', manifest);
  const watcher = new RunWatcher();
  try {
    await watcher.open(berth.url, appName);
    const berthRun = async (): Promise<void> => {
      const run = await api<RunAnswer>(`${berth.url}/apps/${appName}/run/`, 'POST');
      const phase = await watcher.waitFinished(run.id, 180_000);
      if (phase !== RunPhase.Succeeded) throw new Error(`run ${run.id} ended ${phase}`);
    };
    await berthRun();

    // Sequential latency, interleaved so drift on the machine hits both sides alike.
    const raw: number[] = [];
    const viaBerth: number[] = [];
    let berthCpu = 0;
    for (let i = 0; i < SEQUENTIAL; i++) {
      raw.push(await timed(() => rawRun(network)));
      const cpuBefore = cpuMs(berth.pid);
      viaBerth.push(await timed(berthRun));
      berthCpu += cpuMs(berth.pid) - cpuBefore;
    }
    const rawMedian = median(raw);
    const berthMedian = median(viaBerth);
    report(`[${network}] sequential: raw dockerode median`, rawMedian, 'ms');
    report(`[${network}] sequential: berth POST→terminal median`, berthMedian, 'ms');
    report(`[${network}] sequential: berth / raw`, berthMedian / rawMedian, '', { op: '<=', limit: 0.8 });
    report(`[${network}] sequential: berth server CPU time per run`, berthCpu / SEQUENTIAL, 'ms');

    // Throughput at the same parallelism.
    const rawTotal = await timed(() => pool(PARALLEL_RUNS, MAX_PARALLEL, () => rawRun(network)));
    const cpuBefore = cpuMs(berth.pid);
    const berthTotal = await timed(async () => {
      const runs = await Promise.all(Array.from({ length: PARALLEL_RUNS }, () => api<RunAnswer>(`${berth.url}/apps/${appName}/run/`, 'POST')));
      await Promise.all(runs.map((run) => watcher.waitFinished(run.id, 600_000)));
    });
    report(`[${network}] throughput: raw ${PARALLEL_RUNS} runs, ${MAX_PARALLEL} at a time`, rawTotal, 'ms');
    report(`[${network}] throughput: berth ${PARALLEL_RUNS} runs, --max-parallel ${MAX_PARALLEL}`, berthTotal, 'ms');
    report(`[${network}] throughput: raw time / berth time`, rawTotal / berthTotal, '', { op: '>=', limit: 1.1 });
    report(`[${network}] throughput: berth server CPU time per run`, (cpuMs(berth.pid) - cpuBefore) / PARALLEL_RUNS, 'ms');
  } finally {
    watcher.close();
  }
}

async function main(): Promise<void> {
  await docker.ping().catch((err: Error) => {
    throw new Error(`the Docker engine does not answer (${err.message}); run bash .ci/provision first`);
  });
  await docker
    .getImage(IMAGE)
    .inspect()
    .catch(() => {
      throw new Error(`image ${IMAGE} is missing; run bash .ci/provision first`);
    });

  console.log(
    `berth bench:runs — image ${IMAGE}, ${SEQUENTIAL} sequential runs, ${PARALLEL_RUNS} runs at max-parallel ${MAX_PARALLEL}, networks ${NETWORKS.join(', ')}`,
  );
  const berth = await startBerth(['--max-parallel', String(MAX_PARALLEL)]);
  try {
    for (const network of NETWORKS) await compare(berth, network);
  } finally {
    await berth.stop();
  }

  // Memory with a long history in the store.
  const dir = berth.dir;
  const historyDir = path.join(dir, 'history');
  await seedHistory(path.join(historyDir, 'berth.sqlite'), HISTORY);
  const loaded = await startBerth(['--max-parallel', String(MAX_PARALLEL)], { dir: historyDir });
  try {
    // Touch the history the way a client would: list pages of runs.
    for (let offset = 0; offset < Math.min(HISTORY, 2000); offset += 100) await api(`${loaded.url}/runs/?limit=100&offset=${offset}`);
    report(`memory: server RSS with ${HISTORY} finished runs stored`, rssMb(loaded.pid), 'MB', { op: '<', limit: 150 });
  } finally {
    await loaded.stop();
  }
  const leftovers = await docker.listContainers({ all: true, filters: { label: [BENCH_LABEL] } });
  await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
}

main().catch((err) => {
  console.error(`bench:runs failed: ${(err as Error).message}`);
  process.exit(1);
});
