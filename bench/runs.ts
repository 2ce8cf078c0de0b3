/**
 * `npm run bench:runs`: berth against raw dockerode doing the least any
 * executor must (create, start, wait, read logs, remove), on the same local
 * image, in one run:
 *  - sequential: median time from `POST …/run/` to the run being terminal,
 *    divided by the raw median (target ≤ 1.10);
 *  - throughput: 64 runs at --max-parallel 8, raw time / berth time (target ≥ 0.90);
 *  - RSS of the server once 10,000 finished runs are in the store (target < 150 MB).
 */
import path from 'node:path';
import { requestRun } from '../src/controller/run-requests';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { Store } from '../src/store/store';
import { RunPhase } from '../src/model/types';
import { api, cpuMs, median, report, rssMb, startBerth, pool, timed } from './support';
import { RunWatcher, type RunAnswer } from './run-watcher';

const IMAGE = process.env.BERTH_BENCH_IMAGE ?? 'berth-test/busybox:latest';
const COMMAND = ['sh', '-c', 'echo hello from the benchmark'];
const SEQUENTIAL = Number(process.env.BERTH_BENCH_SEQUENTIAL ?? 20);
const PARALLEL_RUNS = 64;
const MAX_PARALLEL = 8;
const HISTORY = Number(process.env.BERTH_BENCH_HISTORY ?? 10_000);
const BENCH_LABEL = 'berth.bench';

const docker = new Docker();

/** One run the raw way: the floor any executor has to pay. */
async function rawRun(): Promise<void> {
  const container = await docker.createContainer({
    Image: IMAGE,
    Cmd: COMMAND,
    Labels: { [BENCH_LABEL]: 'raw' },
    HostConfig: {},
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
    spec: { image: IMAGE, command: COMMAND, env: {}, retries: 0, concurrencyPolicy: 'Allow', imagePullPolicy: 'IfNotPresent', resources: {}, historyLimit: runs },
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

async function main(): Promise<void> {
  await docker.ping().catch((err: Error) => {
    throw new Error(`the Docker engine does not answer (${err.message}); run bash .ci/provision first`);
  });
  await docker.getImage(IMAGE).inspect().catch(() => {
    throw new Error(`image ${IMAGE} is missing; run bash .ci/provision first`);
  });

  console.log(`berth bench:runs — image ${IMAGE}, ${SEQUENTIAL} sequential runs, ${PARALLEL_RUNS} runs at max-parallel ${MAX_PARALLEL}`);
  // Warm both paths (image layers, page cache) so neither side pays first-use costs.
  await rawRun();

  const berth = await startBerth(['--max-parallel', String(MAX_PARALLEL)]);
  const watcher = new RunWatcher();
  try {
    const appName = `bench-${randomBytes(3).toString('hex')}`;
    await api(`${berth.url}/apps/`, 'POST', { name: appName, image: IMAGE, command: COMMAND });
    await watcher.open(berth.url, appName);
    const berthRun = async (): Promise<void> => {
      const run = await api<RunAnswer>(`${berth.url}/apps/${appName}/run/`, 'POST');
      const phase = await watcher.waitFinished(run.id);
      if (phase !== RunPhase.Succeeded) throw new Error(`run ${run.id} ended ${phase}`);
    };
    await berthRun();

    // Sequential latency, interleaved so drift on the machine hits both sides alike.
    const raw: number[] = [];
    const viaBerth: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      raw.push(await timed(rawRun));
      viaBerth.push(await timed(berthRun));
    }
    const rawMedian = median(raw);
    const berthMedian = median(viaBerth);
    report('sequential: raw dockerode median', rawMedian, 'ms');
    report('sequential: berth POST→terminal median', berthMedian, 'ms');
    report('sequential: berth / raw', berthMedian / rawMedian, '', { op: '<=', limit: 1.1 });

    // Throughput at the same parallelism.
    const rawTotal = await timed(() => pool(PARALLEL_RUNS, MAX_PARALLEL, rawRun));
    const cpuBefore = cpuMs(berth.pid);
    const berthTotal = await timed(async () => {
      const runs = await Promise.all(
        Array.from({ length: PARALLEL_RUNS }, () => api<RunAnswer>(`${berth.url}/apps/${appName}/run/`, 'POST')),
      );
      await Promise.all(runs.map((run) => watcher.waitFinished(run.id, 180_000)));
    });
    report(`throughput: raw ${PARALLEL_RUNS} runs, ${MAX_PARALLEL} at a time`, rawTotal, 'ms');
    report(`throughput: berth ${PARALLEL_RUNS} runs, --max-parallel ${MAX_PARALLEL}`, berthTotal, 'ms');
    report('throughput: raw time / berth time', rawTotal / berthTotal, '', { op: '>=', limit: 0.9 });
    report('throughput: berth server CPU time per run', (cpuMs(berth.pid) - cpuBefore) / PARALLEL_RUNS, 'ms');
  } finally {
    watcher.close();
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
