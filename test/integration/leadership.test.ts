import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { createsPerRun } from '../helpers/docker-events';
import { Controller } from '../../src/controller/controller';
import { requestRun } from '../../src/controller/run-requests';
import { DockerExecutor } from '../../src/executors/docker';
import { LABEL_APP, LABEL_RUN } from '../../src/executors/executor';
import { Runtimes } from '../../src/executors/runtimes';
import { termFence } from '../../src/leadership/fence';
import { CONTROLLER_LOCK } from '../../src/leadership/leadership';
import { createLogger } from '../../src/log';
import { createMetrics, createRegistry } from '../../src/metrics';
import { Store } from '../../src/store/store';
import { type Berth, exited, freePort, json, serve } from '../helpers/berth-process';
import { appSpec, POSTGRES_URL, tempDir, TEST_IMAGE, uniqueName } from '../helpers/fixtures';
import { createDatabase, query } from '../helpers/postgres';
import { waitFor } from '../helpers/wait';

const docker = new Docker();
const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
/** Short election settings, so a test sees a failover in about a second. */
const LEASE_MS = 3000;
const ELECTION = ['--lease-duration', '3s', '--renew-deadline', '2s', '--retry-period', '250ms'];

interface Replica extends Berth {
  id: string;
}

/** Whether IDENTITY is the leader-election identity of REPLICA's process: its --replica-id and a random suffix. */
const isReplica = (identity: string | undefined, replica: Replica): boolean => new RegExp(`^${replica.id}_[0-9a-f]{8}$`).test(identity ?? '');

async function leading(replica: Replica): Promise<boolean> {
  const text = await (await fetch(`${replica.url}/metrics`)).text();
  const value = /^berth_leader (\d+)/m.exec(text)?.[1];
  if (value === undefined) throw new Error(`no berth_leader gauge on ${replica.id}`);
  return value === '1';
}

/** The one replica that leads, once exactly one does (and /readyz agrees). */
async function theLeader(replicas: Replica[], timeoutMs = 10_000): Promise<Replica> {
  return waitFor(
    'exactly one replica to lead',
    async () => {
      const alive = replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null);
      const flags = await Promise.all(alive.map(leading));
      const leaders = alive.filter((_, i) => flags[i]);
      if (leaders.length !== 1) return undefined;
      const ready = (await json(`${leaders[0].url}/readyz`)).body;
      return ready.leader?.leading && isReplica(ready.leader.leader?.identity, leaders[0]) ? leaders[0] : undefined;
    },
    { timeoutMs },
  );
}

async function removeContainers(app: string): Promise<void> {
  const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${app}`] } });
  await Promise.all(
    left.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
}

describe('more than one replica: leader election on PostgreSQL', function () {
  this.timeout(120_000);
  let database: Awaited<ReturnType<typeof createDatabase>>;
  let dir: string;
  let app: string;
  let replicas: Replica[];

  const start = async (id: string): Promise<Replica> => {
    const berth = await serve(dir, await freePort(), ['--db', database.url, '--leader-elect', '--replica-id', id, ...ELECTION]);
    const replica = { ...berth, id };
    replicas.push(replica);
    return replica;
  };

  beforeEach(async () => {
    database = await createDatabase('berth_le');
    dir = tempDir();
    fs.mkdirSync(path.join(dir, 'apps'));
    app = uniqueName('le');
    replicas = [];
  });

  afterEach(async () => {
    // SIGTERM, not SIGKILL: a replica stops after its launches in flight, so none lands after the cleanup below.
    for (const replica of replicas) {
      if (replica.child.exitCode !== null || replica.child.signalCode !== null) continue;
      replica.child.kill('SIGCONT');
      replica.child.kill('SIGTERM');
    }
    await Promise.all(replicas.map((r) => exited(r.child)));
    await removeContainers(app);
    await database.drop();
  });

  it('fails over within the lease duration when the leader is killed mid-run; every run finishes exactly once; the old leader rejoins as a follower', async () => {
    const [a, b] = [await start(`${app}-a`), await start(`${app}-b`)];
    const leader = await theLeader([a, b]);
    const follower = leader === a ? b : a;
    assert.equal(await leading(follower), false);
    const followerReady = (await json(`${follower.url}/readyz`)).body;
    assert.equal(followerReady.status, 'ready');
    assert.equal(followerReady.leader.leading, false);
    assert.ok(isReplica(followerReady.leader.leader.identity, leader), followerReady.leader.leader.identity);
    assert.ok(Date.parse(followerReady.leader.leader.since) <= Date.now());

    const since = Date.now();
    const created = await json(`${leader.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['sh', '-c', 'echo started $TAG; sleep 3; echo done $TAG; exit $CODE'] }),
    });
    assert.equal(created.status, 201);
    // Six runs at --max-parallel 4: four in flight at the kill, two still Pending.
    const codes = [0, 7, 0, 3, 0, 5];
    const asked = [];
    for (const [i, code] of codes.entries()) {
      const answer = await json(`${leader.url}/apps/${app}/run/`, { method: 'POST', body: JSON.stringify({ env: { TAG: `r${i}`, CODE: String(code) } }) });
      assert.equal(answer.status, 202);
      asked.push(answer.body);
    }
    await waitFor('four runs to be Running on the leader', async () => {
      const runs = (await json(`${leader.url}/apps/${app}/run/`)).body as { status: { phase: string } }[];
      return runs.filter((r) => r.status.phase === 'Running').length === 4;
    });

    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    await exited(leader.child);
    await waitFor('the follower to lead', () => leading(follower), { timeoutMs: LEASE_MS });
    const failoverMs = Date.now() - killedAt;
    assert.ok(failoverMs < LEASE_MS, `failover took ${failoverMs} ms`);

    for (const [i, run] of asked.entries()) {
      const done = await waitFor(
        `run r${i} to finish`,
        async () => {
          const r = (await json(`${follower.url}/apps/${app}/run/${run.id}/`)).body;
          return ['Succeeded', 'Failed'].includes(r.status.phase) ? r : undefined;
        },
        { timeoutMs: 30_000 },
      );
      assert.equal(done.status.phase, codes[i] === 0 ? 'Succeeded' : 'Failed', `run r${i}`);
      assert.equal(done.status.exitCode, codes[i], `run r${i}`);
      assert.equal(done.status.attempts, 1, `run r${i} ran one attempt`);
      const logs = await (await fetch(`${follower.url}/apps/${app}/run/${run.id}/logs/`)).text();
      assert.equal(logs, `started r${i}\ndone r${i}\n`);
    }
    const creates = await createsPerRun(docker, app, since);
    for (const run of asked) assert.equal(creates.get(run.metadata.uid), 1, `containers created for run ${run.metadata.name}`);
    assert.equal(creates.size, asked.length);

    // The old leader comes back as a follower.
    const back = await start(leader.id);
    assert.equal(await leading(back), false);
    const ready = (await json(`${back.url}/readyz`)).body;
    assert.ok(isReplica(ready.leader.leader.identity, follower), ready.leader.leader.identity);
    assert.equal((await theLeader([back, follower])).id, follower.id);
  });

  it('answers one run to concurrent requests with one Idempotency-Key, and to concurrent Forbid requests, sent to both replicas', async () => {
    const [a, b] = [await start(`${app}-a`), await start(`${app}-b`)];
    await theLeader([a, b]);
    const manifest = {
      apiVersion: 'berth.dev/v1',
      kind: 'App',
      metadata: { name: app },
      spec: { image: TEST_IMAGE, command: ['sh', '-c', 'sleep 5'], concurrencyPolicy: 'Forbid' },
    };
    assert.equal((await json(`${a.url}/apps/`, { method: 'POST', body: JSON.stringify(manifest) })).status, 201);

    const key = uniqueName('key');
    const keyed = await Promise.all(
      Array.from({ length: 16 }, (_, i) => json(`${[a, b][i % 2].url}/apps/${app}/run/`, { method: 'POST', headers: { 'idempotency-key': key } })),
    );
    assert.deepEqual([...new Set(keyed.map((r) => r.status))].sort(), [200, 202]);
    assert.equal(keyed.filter((r) => r.status === 202).length, 1);
    assert.equal(new Set(keyed.map((r) => r.body.id)).size, 1);
    // Forbid: that run is active, so every further request is refused, whichever replica gets it.
    const forbidden = await Promise.all(Array.from({ length: 8 }, (_, i) => json(`${[a, b][i % 2].url}/apps/${app}/run/`, { method: 'POST' })));
    assert.deepEqual(
      forbidden.map((r) => r.status),
      Array(8).fill(409),
    );
    assert.equal((await json(`${a.url}/apps/${app}/run/`)).body.length, 1);

    // With no active run, concurrent requests on both replicas still make exactly one.
    const other = uniqueName('le');
    assert.equal((await json(`${b.url}/apps/`, { method: 'POST', body: JSON.stringify({ ...manifest, metadata: { name: other } }) })).status, 201);
    try {
      const raced = await Promise.all(Array.from({ length: 16 }, (_, i) => json(`${[a, b][i % 2].url}/apps/${other}/run/`, { method: 'POST' })));
      assert.equal(raced.filter((r) => r.status === 202).length, 1);
      assert.equal(raced.filter((r) => r.status === 409).length, 15);
      assert.equal((await json(`${b.url}/apps/${other}/run/`)).body.length, 1);
    } finally {
      await json(`${a.url}/apps/${other}/`, { method: 'DELETE' });
      await waitFor(
        "the other app's containers to go",
        async () => (await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${other}`] } })).length === 0,
      );
    }
  });

  it("stops leading at once when the lock's connection is terminated, and runs asked for after that launch under the new epoch only", async () => {
    const [a, b] = [await start(`${app}-a`), await start(`${app}-b`)];
    const leader = await theLeader([a, b]);
    const before = (await json(`${leader.url}/readyz`)).body.leader.leader;
    const [{ pid }] = await query<{ pid: number }>(
      POSTGRES_URL,
      `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1`,
      [database.name],
    );
    await query(POSTGRES_URL, 'SELECT pg_terminate_backend($1)', [pid]);

    const after = await waitFor('a new term to begin', async () => {
      const ready = (await json(`${a.url}/readyz`)).body;
      return ready.leader.leader.epoch > before.epoch ? ready.leader.leader : undefined;
    });
    const next = await theLeader([a, b]);
    assert.ok(isReplica(after.identity, next), after.identity);
    if (next !== leader) assert.equal(await leading(leader), false);

    assert.equal(
      (await json(`${next.url}/apps/`, { method: 'POST', body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['sh', '-c', 'echo after'] }) })).status,
      201,
    );
    const asked = (await json(`${leader.url}/apps/${app}/run/`, { method: 'POST' })).body;
    // Asked of the old leader, launched by the current one: the change reaches it through the store's change feed.
    await waitFor(
      'the run asked for after the partition to succeed',
      async () => (await json(`${next.url}/apps/${app}/run/${asked.id}/`)).body.status.phase === 'Succeeded',
    );
    const launches = await query<{ holder: string; epoch: string }>(database.url, 'SELECT holder, epoch FROM run_launches WHERE run_id = $1', [asked.id]);
    assert.deepEqual(
      launches.map((l) => [l.holder, Number(l.epoch)]),
      [[after.identity, after.epoch]],
    );
  });

  it('deposes a frozen leader: PostgreSQL ends its silent session after the lease duration, the other leads, and the old one, thawed, launches nothing', async () => {
    const [a, b] = [await start(`${app}-a`), await start(`${app}-b`)];
    const leader = await theLeader([a, b]);
    const follower = leader === a ? b : a;
    assert.equal(
      (await json(`${leader.url}/apps/`, { method: 'POST', body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['sh', '-c', 'echo $TAG'] }) }))
        .status,
      201,
    );
    const since = Date.now();
    leader.child.kill('SIGSTOP');
    try {
      const frozenAt = Date.now();
      await waitFor('the follower to lead', () => leading(follower), { timeoutMs: LEASE_MS + 2000 });
      assert.ok(Date.now() - frozenAt < LEASE_MS + 1000, `took ${Date.now() - frozenAt} ms`);
      const asked = [];
      for (let i = 0; i < 4; i++)
        asked.push((await json(`${follower.url}/apps/${app}/run/`, { method: 'POST', body: JSON.stringify({ env: { TAG: `t${i}` } }) })).body);
      leader.child.kill('SIGCONT');
      await waitFor('the thawed leader to know it no longer leads', async () => !(await leading(leader)));
      for (const run of asked) {
        await waitFor(
          `run ${run.metadata.name} to succeed`,
          async () => (await json(`${follower.url}/apps/${app}/run/${run.id}/`)).body.status.phase === 'Succeeded',
        );
      }
      const creates = await createsPerRun(docker, app, since);
      for (const run of asked) assert.equal(creates.get(run.metadata.uid), 1, `containers created for run ${run.metadata.name}`);
      const launches = await query<{ holder: string }>(database.url, 'SELECT DISTINCT holder FROM run_launches');
      assert.equal(launches.length, 1, launches.map((l) => l.holder).join());
      assert.ok(isReplica(launches[0].holder, follower), launches[0].holder);
      assert.equal((await theLeader([a, b])).id, follower.id);
    } finally {
      leader.child.kill('SIGCONT');
    }
  });

  it('makes one run of many concurrent inserts through two stores on one database: one idempotency key, or Forbid', async () => {
    const stores = [await Store.open(database.url), await Store.open(database.url)];
    try {
      const forbid = await stores[0].createApp({ name: app, spec: appSpec({ concurrencyPolicy: 'Forbid' }), source: 'api' });
      const keyed = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          stores[i % 2].insertRun(forbid, { name: `${app}-k${i}`, spec: { app, template: forbid.spec }, idempotencyKey: 'one' }),
        ),
      );
      assert.equal(keyed.filter((r) => r.outcome === 'created').length, 1);
      assert.equal(new Set(keyed.map((r) => (r.outcome === 'active' ? undefined : r.run.id))).size, 1);

      const other = await stores[1].createApp({ name: `${app}-x`, spec: appSpec({ concurrencyPolicy: 'Forbid' }), source: 'api' });
      const exclusive = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          stores[i % 2].insertRun(other, { name: `${app}-x${i}`, spec: { app: other.metadata.name, template: other.spec }, exclusive: true }),
        ),
      );
      assert.equal(exclusive.filter((r) => r.outcome === 'created').length, 1);
      assert.equal(exclusive.filter((r) => r.outcome === 'active').length, 19);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('refuses a launch fenced by a stale epoch: no workload, the run stays Pending', async () => {
    const store = await Store.open(database.url);
    const stopping = new AbortController();
    try {
      const stale = await store.leadership.takeOver(CONTROLLER_LOCK, 'deposed');
      const current = await store.leadership.takeOver(CONTROLLER_LOCK, 'successor');
      assert.equal(current.epoch, stale.epoch + 1);
      assert.equal(
        await store.leadership.recordLaunch({ name: CONTROLLER_LOCK, holder: 'deposed', epoch: stale.epoch }, { runId: 1, attempt: 1, workload: 'x' }),
        false,
      );

      const logger = createLogger('silent');
      const fence = termFence(store.leadership, { name: CONTROLLER_LOCK, holder: 'deposed', epoch: stale.epoch }, logger);
      let refused!: () => void;
      const refusal = new Promise<void>((resolve) => (refused = resolve));
      const controller = new Controller({
        store,
        runtimes: new Runtimes([new DockerExecutor({})], 'docker'),
        logger,
        metrics: createMetrics(createRegistry()),
        ownsWorkload: () => false,
        fence: {
          async recordLaunch(launch) {
            const held = await fence.recordLaunch(launch);
            if (!held) refused();
            return held;
          },
        },
      });
      const running = controller.start(stopping.signal);
      const stored = await store.createApp({ name: app, spec: appSpec({ command: ['sh', '-c', 'echo never'] }), source: 'api' });
      const { run } = await requestRun(store, stored);
      await refusal;
      stopping.abort();
      await running;
      assert.equal((await store.mustGetRun(run.id)).status.phase, 'Pending');
      assert.deepEqual(await docker.listContainers({ all: true, filters: { label: [`${LABEL_RUN}=${run.metadata.uid}`] } }), []);
    } finally {
      stopping.abort();
      await store.close();
    }
  });

  it('refuses --leader-elect with SQLite in one line, exit 2', async () => {
    const child = spawn(process.execPath, [MAIN, 'serve', '--db', path.join(dir, 'berth.sqlite'), '--leader-elect'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 2);
    assert.equal(stderr, 'berth: --leader-elect needs a shared PostgreSQL store (--db postgres://…); SQLite allows one replica\n');
  });
});
