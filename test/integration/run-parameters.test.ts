/**
 * Run parameters end to end: `berth serve` as a process, a real Docker
 * engine, requests over HTTP and `kind: Run` documents in the apps folder.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { Berth, exited, freePort, json, runOf, serve } from '../helpers/berth-process';
import { waitFor } from '../helpers/wait';
import { removeContainersOf } from '../helpers/containers';

describe('run parameters (berth serve, Docker)', function () {
  this.timeout(120_000);
  let dir: string;
  let berth: Berth;
  let app: string;

  before(async () => {
    dir = tempDir('berth-params-');
    fs.mkdirSync(path.join(dir, 'apps'));
    berth = await serve(dir, await freePort());
  });

  after(async () => {
    berth.child.kill('SIGTERM');
    await exited(berth.child);
  });

  beforeEach(() => {
    app = uniqueName('params');
  });

  afterEach(async () => {
    await removeContainersOf([app]);
  });

  const parameters = [
    { name: 'TARGET', description: 'where to report', required: true, enum: ['staging', 'production'] },
    { name: 'DAYS', default: '7', pattern: '[0-9]{1,3}' },
  ];

  async function createApp(spec: Record<string, unknown>): Promise<void> {
    const res = await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name: app }, spec: { image: TEST_IMAGE, ...spec } }),
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }

  const askForRun = (body?: unknown) =>
    json(`${berth.url}/apps/${app}/run/`, { method: 'POST', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

  const runsOfApp = async () => (await json(`${berth.url}/apps/${app}/run/`)).body as unknown[];

  async function finishedLogs(id: number): Promise<string> {
    const run = await waitFor(`run ${id} to finish`, async () => {
      const seen = await runOf(berth.url, app, id);
      return ['Succeeded', 'Failed'].includes(seen.status.phase) ? seen : undefined;
    });
    assert.equal(run.status.phase, 'Succeeded', JSON.stringify(run.status));
    return (await fetch(`${berth.url}/apps/${app}/run/${id}/logs/`)).text();
  }

  it('hands the values and the defaults to the container as environment variables, over the App env, and records them', async () => {
    await createApp({ parameters, env: { DAYS: 'from-the-app', OTHER: 'kept' }, command: ['sh', '-c', 'echo "$TARGET $DAYS $OTHER"'] });
    const asked = await askForRun({ parameters: { TARGET: 'production' } });
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    assert.deepEqual(asked.body.spec.parameters, { TARGET: 'production', DAYS: '7' });
    assert.equal(await finishedLogs(asked.body.id), 'production 7 kept\n');
    assert.deepEqual((await runOf(berth.url, app, asked.body.id)).spec.parameters, { TARGET: 'production', DAYS: '7' });
  });

  it('refuses bad values with 422 naming each one, and creates nothing', async () => {
    await createApp({ parameters, command: ['true'] });
    const refused = await askForRun({ parameters: { TARGET: 'qa', DAYS: 'many', COLOR: 'red' } });
    assert.equal(refused.status, 422);
    assert.deepEqual(
      refused.body.details.map((d: { field: string }) => d.field),
      ['parameters.COLOR', 'parameters.TARGET', 'parameters.DAYS'],
    );
    assert.match(refused.body.message, /parameters\.TARGET: must be one of staging, production; got "qa"/);
    const collides = await askForRun({ parameters: { TARGET: 'staging' }, env: { DAYS: '1' } });
    assert.equal(collides.status, 422);
    assert.deepEqual(collides.body.details, [{ field: 'env.DAYS', reason: `is a parameter of app "${app}": give it as parameters.DAYS` }]);
    assert.deepEqual(await runsOfApp(), []);
  });

  it('answers a catastrophic pattern with a hostile value at once with 422, and keeps serving', async () => {
    await createApp({ parameters: [{ name: 'WORD', pattern: '(a+)+' }], command: ['true'] });
    // 4 KB (the longest value) that (a+)+ fails on only after trying every split of the a's, and 50 KB past the limit.
    for (const value of [`${'a'.repeat(4095)}!`, `${'a'.repeat(50_000)}!`]) {
      const started = performance.now();
      const refused = await json(`${berth.url}/apps/${app}/run/`, {
        method: 'POST',
        body: JSON.stringify({ parameters: { WORD: value } }),
        signal: AbortSignal.timeout(5_000),
      });
      assert.equal(refused.status, 422);
      assert.deepEqual(
        refused.body.details.map((d: { field: string }) => d.field),
        ['parameters.WORD'],
      );
      assert.ok(performance.now() - started < 2_000, `answered in ${Math.round(performance.now() - started)} ms`);
    }
    assert.equal((await json(`${berth.url}/healthz`)).status, 200);

    assert.deepEqual(await runsOfApp(), []);
  });

  it('takes a request with no body when nothing is required, and names the missing parameter when something is', async () => {
    await createApp({ parameters: [{ name: 'DAYS', default: '7' }], command: ['sh', '-c', 'echo "days=$DAYS"'] });
    const seedStyle = await askForRun();
    assert.equal(seedStyle.status, 202);
    assert.equal(await finishedLogs(seedStyle.body.id), 'days=7\n');

    const strict = uniqueName('params');
    const created = await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name: strict }, spec: { image: TEST_IMAGE, parameters } }),
    });
    assert.equal(created.status, 201);
    const missing = await json(`${berth.url}/apps/${strict}/run/`, { method: 'POST' });
    assert.equal(missing.status, 422);
    assert.deepEqual(missing.body.details, [{ field: 'parameters.TARGET', reason: `is required by app "${strict}" (where to report)` }]);
    assert.deepEqual((await json(`${berth.url}/apps/${strict}/run/`)).body, []);
  });

  it('checks a kind: Run document from the apps folder the same way', async () => {
    const document = (run: string, values: string) =>
      ['apiVersion: berth.dev/v1', 'kind: Run', `metadata: {name: ${run}}`, `spec: {app: ${app}, parameters: ${values}}`].join('\n');
    fs.writeFileSync(
      path.join(dir, 'apps', `${app}.yaml`),
      [
        [
          'apiVersion: berth.dev/v1',
          'kind: App',
          `metadata: {name: ${app}}`,
          'spec:',
          `  image: ${TEST_IMAGE}`,
          `  command: sh -c 'echo "$TARGET $DAYS"'`,
          `  parameters: ${JSON.stringify(parameters)}`,
        ].join('\n'),
        document(`${app}-bad`, '{TARGET: qa}'),
        document(`${app}-good`, '{TARGET: staging, DAYS: "30"}'),
      ].join('\n---\n'),
    );
    const good = await waitFor('the good Run to be created', async () => (await runsOfApp()).find((r: any) => r.metadata.name === `${app}-good`) as any);
    assert.equal(await finishedLogs(good.id), 'staging 30\n');
    const report = await waitFor('the bad Run to be reported', async () => {
      const text = JSON.stringify((await json(`${berth.url}/sources/`)).body);
      return text.includes(`${app}-bad`) ? text : undefined;
    });
    assert.match(report, /spec\.parameters\.TARGET: must be one of staging, production; got \\"qa\\"/);
    assert.deepEqual(
      (await runsOfApp()).map((r: any) => r.metadata.name),
      [`${app}-good`],
    );
  });
});
