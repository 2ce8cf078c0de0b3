/**
 * berth is SIGKILLed again and again while runs are being asked for and
 * started: every run it acknowledged finishes, and each attempt has exactly
 * one container (counted by label) — nothing lost, nothing run twice.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { LABEL_APP, LABEL_ATTEMPT, LABEL_RUN } from '../../src/executors/executor';
import { Berth, exited, json, runOf, serve } from '../helpers/berth-process';
import { removeContainersOf } from '../helpers/containers';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

const KILLS = 6;
const RUNS_PER_ROUND = 3;

describe('chaos: berth SIGKILLed in a loop while runs start', function () {
  this.timeout(180_000);
  let berth: Berth | undefined;
  let app: string;

  afterEach(async () => {
    if (berth && berth.child.exitCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    berth = undefined;
    await removeContainersOf([app]);
  });

  it(`loses no acknowledged run and starts none twice across ${KILLS} kills`, async () => {
    const dir = tempDir('berth-chaos-kill-');
    fs.mkdirSync(path.join(dir, 'apps'));
    app = uniqueName('kill');
    // Finished containers are kept so that every container berth ever made can be counted.
    const flags = ['--keep-containers', '--default-network', 'none'];
    berth = await serve(dir, undefined, flags);
    const created = await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['sh', '-c', 'sleep 0.3; echo done'] }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    const acknowledged: { id: number; uid: string }[] = [];
    for (let round = 0; round < KILLS; round++) {
      const asked = await Promise.all(Array.from({ length: RUNS_PER_ROUND }, () => json(`${berth!.url}/apps/${app}/run/`, { method: 'POST' })));
      for (const answer of asked) {
        assert.equal(answer.status, 202, JSON.stringify(answer.body));
        acknowledged.push({ id: answer.body.id, uid: answer.body.metadata.uid });
      }
      // Kill while the last of them is being started: it is Pending or just Running, its container being made.
      const last = acknowledged[acknowledged.length - 1];
      await waitFor('the last run to be picked up', async () => (await runOf(berth!.url, app, last.id)).status.phase !== 'Pending' || round % 2 === 0);
      berth.child.kill('SIGKILL');
      await exited(berth.child);
      berth = await serve(dir, undefined, flags);
    }

    for (const run of acknowledged) {
      await waitFor(`run ${run.id} to succeed`, async () => (await runOf(berth!.url, app, run.id)).status.phase === 'Succeeded', { timeoutMs: 60_000 });
    }
    const docker = new Docker();
    const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${app}`] } });
    const perAttempt = new Map<string, number>();
    for (const c of containers) {
      const key = `${c.Labels[LABEL_RUN]}#${c.Labels[LABEL_ATTEMPT]}`;
      perAttempt.set(key, (perAttempt.get(key) ?? 0) + 1);
    }
    for (const run of acknowledged) {
      const seen = await runOf(berth.url, app, run.id);
      const history: unknown[] = seen.status.history ?? [];
      const containersOfRun = containers.filter((c) => c.Labels[LABEL_RUN] === run.uid);
      assert.equal(containersOfRun.length, seen.status.attempts, `run ${run.id}: ${containersOfRun.length} containers for ${seen.status.attempts} attempts`);
      assert.equal(history.length, seen.status.attempts, `run ${run.id}: attempt records ${JSON.stringify(history)}`);
    }
    for (const [key, count] of perAttempt) assert.equal(count, 1, `attempt ${key} has ${count} containers`);
    assert.equal(containers.length, acknowledged.length, 'one container per run');
  });
});
