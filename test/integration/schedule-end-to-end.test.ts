/**
 * A schedule on the real server: `berth serve` as a child process, Docker,
 * and one real due time (so this takes up to a minute).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Berth, exited, freePort, json, serve } from '../helpers/berth-process';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';
import { removeContainersOf } from '../helpers/containers';

/** A berth with a store and an (empty) apps folder of its own. */
async function start(): Promise<Berth> {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'apps'));
  return serve(dir, await freePort());
}

describe('schedules on berth serve with Docker', function () {
  this.timeout(150_000);
  let berth: Berth | undefined;
  let app: string;

  beforeEach(() => {
    app = uniqueName('cron');
  });
  afterEach(async () => {
    if (berth) {
      berth.child.kill('SIGKILL');
      await exited(berth.child);
      berth = undefined;
    }
    await removeContainersOf([app]);
  });

  const manifest = (schedule: Record<string, unknown>) => ({
    apiVersion: 'berth.dev/v1',
    kind: 'App',
    metadata: { name: app },
    spec: { image: TEST_IMAGE, command: ['sh', '-c', 'echo scheduled'], schedule },
  });

  it('refuses a bad expression with 422 naming the field, and makes nothing', async () => {
    berth = await start();
    const refused = await json(`${berth.url}/apps/`, { method: 'POST', body: JSON.stringify(manifest({ cron: '0 25 * * *' })) });
    assert.equal(refused.status, 422);
    assert.deepEqual(refused.body.details, [
      { field: 'spec.schedule.cron', reason: '"0 25 * * *" is not a 5-field cron expression or macro: Invalid value for hour: 25' },
    ]);
    assert.equal((await json(`${berth.url}/apps/${app}/`)).status, 404);
  });

  it('makes the run of the next minute once, shows the schedule in the App, and counts its lateness', async () => {
    berth = await start();
    const created = await json(`${berth.url}/apps/`, { method: 'POST', body: JSON.stringify(manifest({ cron: '* * * * *' })) });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    const url = berth.url;
    const next: string = await waitFor('the next due time in the App', async () => (await json(`${url}/apps/${app}/`)).body.status.schedule?.nextScheduleTime);
    const runName = `${app}-${Date.parse(next) / 60_000}`;
    const run = await waitFor(
      `run ${runName} to succeed`,
      async () => {
        const found = await json(`${url}/apps/${app}/run/${runName}/`);
        return found.status === 200 && found.body.status.phase === 'Succeeded' ? found.body : undefined;
      },
      { timeoutMs: 100_000, intervalMs: 250 },
    );
    assert.equal(run.metadata.labels['berth.dev/scheduled-at'], String(Date.parse(next) / 60_000));

    const shown = (await json(`${url}/apps/${app}/`)).body.status.schedule;
    assert.ok(Date.parse(shown.lastScheduleTime) >= Date.parse(next), JSON.stringify(shown));
    assert.ok(Date.parse(shown.nextScheduleTime) > Date.parse(shown.lastScheduleTime), JSON.stringify(shown));
    const history = (await json(`${url}/apps/${app}/run/`)).body;
    const names: string[] = (history.results ?? history.items ?? history).map((r: { metadata: { name: string } }) => r.metadata.name);
    assert.equal(names.filter((n) => n === runName).length, 1);

    const metrics = await (await fetch(`${url}/metrics`)).text();
    const count = /^berth_schedule_lateness_seconds_count (\d+)/m.exec(metrics);
    const sum = /^berth_schedule_lateness_seconds_sum ([\d.e-]+)/m.exec(metrics);
    assert.ok(count && Number(count[1]) >= 1, metrics);
    // The scheduler looks every second: a run made later than that on an idle server would be a bug.
    assert.ok(sum && Number(sum[1]) / Number(count![1]) < 2.5, `mean lateness ${sum?.[1]} s over ${count?.[1]} runs`);
  });
});
