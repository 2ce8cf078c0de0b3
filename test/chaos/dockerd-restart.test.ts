/**
 * The Docker engine dies under a running berth and comes back: /readyz says
 * so meanwhile, runs in flight are observed again (or end with a reason),
 * never hang, and none runs twice. The engine is a private dockerd: the shared
 * one serves other tests and must never be restarted.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { LABEL_APP, LABEL_RUN } from '../../src/executors/executor';
import { Berth, exited, json, runOf, serve } from '../helpers/berth-process';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { PrivateDockerd, dockerdMissing, startDockerd } from '../helpers/private-dockerd';
import { waitFor } from '../helpers/wait';

const FINISHED = ['Succeeded', 'Failed', 'Cancelled'];

describe('chaos: dockerd restarts mid-run', function () {
  this.timeout(180_000);
  let engine: PrivateDockerd | undefined;
  let berth: Berth | undefined;

  before(async function () {
    const missing = dockerdMissing();
    // A missing prerequisite fails the suite rather than skipping it: CI must not pass without the chaos tests.
    if (missing) throw new Error(`this chaos test cannot run here: ${missing} (bash .ci/provision sets it up)`);
    engine = await startDockerd();
  });

  after(async () => {
    await engine?.remove();
  });

  afterEach(async () => {
    if (berth && berth.child.exitCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    berth = undefined;
  });

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`observes runs in flight again after a ${signal} of dockerd, turns unready and ready, and runs nothing twice`, async () => {
      const dir = tempDir('berth-chaos-dockerd-');
      fs.mkdirSync(path.join(dir, 'apps'));
      berth = await serve(dir, undefined, ['--docker-host', engine!.host, '--default-network', 'none']);
      const app = uniqueName('dockerd');
      const created = await json(`${berth.url}/apps/`, {
        method: 'POST',
        body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['sh', '-c', 'sleep 1; echo done'] }),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const ask = async () => {
        const answer = await json(`${berth!.url}/apps/${app}/run/`, { method: 'POST' });
        assert.equal(answer.status, 202, JSON.stringify(answer.body));
        return answer.body.id as number;
      };

      const inFlight = await ask();
      await waitFor('the run to be Running', async () => (await runOf(berth!.url, app, inFlight)).status.phase === 'Running');
      await engine!.stop(signal);
      const unready = await waitFor('/readyz to turn unready', async () => {
        const res = await fetch(`${berth!.url}/readyz`);
        return res.status === 503 ? ((await res.json()) as { message: string }) : undefined;
      });
      assert.match(unready.message, /unreachable|docker/i);
      // Asked while the engine is away: acknowledged, and run once it is back.
      const duringOutage = await ask();

      await engine!.start();
      await waitFor('/readyz to be ready again', async () => (await fetch(`${berth!.url}/readyz`)).ok, { timeoutMs: 60_000 });
      const outcomes = [];
      for (const id of [inFlight, duringOutage]) {
        const run = await waitFor(
          `run ${id} to finish`,
          async () => {
            const seen = await runOf(berth!.url, app, id);
            return FINISHED.includes(seen.status.phase) && seen;
          },
          { timeoutMs: 60_000 },
        );
        outcomes.push(run.status);
      }
      // The run in flight either finished (observed again) or failed with a reason that says what happened.
      assert.ok(outcomes[0].phase === 'Succeeded' || outcomes[0].reason, JSON.stringify(outcomes[0]));
      assert.equal(outcomes[1].phase, 'Succeeded', JSON.stringify(outcomes[1]));

      const containers = await engine!.docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${app}`] } });
      const perRun = new Map<string, number>();
      for (const c of containers) perRun.set(`${c.Labels[LABEL_RUN]}`, (perRun.get(`${c.Labels[LABEL_RUN]}`) ?? 0) + 1);
      for (const [run, count] of perRun) assert.ok(count <= 1, `run ${run} has ${count} containers`);
    });
  }
});
