/**
 * berth's container image (issue 8, "Image"): the Dockerfile built on the local
 * bases of .ci/image/base.sh (nothing can be pulled here) through
 * .ci/image/build.sh, then run the way a cluster runs it: read-only root, no
 * capabilities, the image's own user.
 *
 * build.sh reuses berth:dev while its `dev.berth.image.inputs` label matches a
 * hash of the Dockerfile, package files and src/, so only the first run (or
 * one after a change) pays for the build; the build has its own timeout.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_SCRIPT, BUILD_TIMEOUT_MS, buildImage, IMAGE, ROOT, run } from '../helpers/image';
import { serverNodeFlags } from '../helpers/berth-process';
import { waitFor } from '../helpers/wait';

const INPUTS_LABEL = 'dev.berth.image.inputs';
/** Containers this test starts carry it, so leftovers of a killed run can be found. */
const TEST_LABEL = 'dev.berth.test';
const TEST_LABEL_VALUE = 'image';
const UID = '10001';

async function docker(...args: string[]): Promise<string> {
  return (await run('docker', args)).stdout.trim();
}

/** What `docker image inspect` says of the image. */
async function inspectImage(): Promise<any> {
  return JSON.parse(await docker('image', 'inspect', IMAGE))[0];
}

async function removeContainers(ids: string[]): Promise<void> {
  if (ids.length > 0) await docker('rm', '-f', '-v', ...ids).catch(() => undefined);
}

describe('container image', function () {
  this.timeout(60_000);
  let imageId = '';

  before(async function () {
    this.timeout(BUILD_TIMEOUT_MS + 30_000);
    // Stopped leftovers of an earlier, killed run of this test (running ones may belong to a run in progress).
    for (const status of ['exited', 'created', 'dead']) {
      const ids = await docker('ps', '-aq', '--filter', `label=${TEST_LABEL}=${TEST_LABEL_VALUE}`, '--filter', `status=${status}`);
      await removeContainers(ids.split('\n').filter(Boolean));
    }
    await buildImage();
    imageId = (await inspectImage()).Id;
  });

  it('is labelled with the hash of its inputs, and a second build reuses it', async function () {
    const inputs = (await run('bash', [BUILD_SCRIPT, '--inputs'], { env: { ...process.env, IMAGE } })).stdout.trim();
    assert.match(inputs, /^[0-9a-f]{32}$/);
    const image = await inspectImage();
    // build.sh builds from a snapshot it hashes: a mismatch here means the tree changed since (an edit during the build).
    assert.equal(
      image.Config.Labels[INPUTS_LABEL],
      inputs,
      'the image is not labelled with the current inputs: did src/ or the package files change since the build?',
    );

    const again = await run('bash', [BUILD_SCRIPT], { timeoutMs: 120_000, env: { ...process.env, IMAGE, FORCE: '' } });
    assert.match(again.stderr, /berth:dev is up to date/);
    assert.equal((await inspectImage()).Id, imageId);
  });

  it('runs `berth serve` as uid 10001, with the environment `npm start` sets and no HEALTHCHECK', async function () {
    const { Config: config } = await inspectImage();
    assert.equal(config.User, `${UID}:${UID}`);
    assert.deepEqual(config.Entrypoint, ['node', ...serverNodeFlags(), '/app/dist/src/cli/main.js']);
    assert.deepEqual(config.Cmd, ['serve']);
    assert.ok(config.Env.includes('MALLOC_ARENA_MAX=2'), config.Env.join(' '));
    assert.ok(config.Env.includes('BERTH_HOST=0.0.0.0'), config.Env.join(' '));
    assert.equal(config.Healthcheck, undefined);

    const ids = await docker('run', '--rm', '--label', `${TEST_LABEL}=${TEST_LABEL_VALUE}`, '--entrypoint', 'sh', IMAGE, '-c', 'id -u; id -g');
    assert.deepEqual(ids.split('\n'), [UID, UID]);
  });

  it('holds dist/, package.json and production dependencies only', async function () {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const devOnly = ['typescript', 'mocha', 'autocannon', 'playwright-core', '@types/mocha', '@types/koa', '@types/dockerode'];
    const script = `
      const fs = require('fs');
      const [prod, dev] = JSON.parse(process.argv[1]);
      const has = (name) => fs.existsSync('/app/node_modules/' + name + '/package.json');
      require('sqlite3'); // the addon compiled in the build stage loads here
      console.log(JSON.stringify({
        app: fs.readdirSync('/app').sort(),
        dist: fs.readdirSync('/app/dist').sort(),
        missing: prod.filter((name) => !has(name)),
        present: dev.filter(has),
        writable: (() => { try { fs.accessSync('/app', fs.constants.W_OK); return true; } catch { return false; } })(),
      }));`;
    const out = await docker(
      'run',
      '--rm',
      '--label',
      `${TEST_LABEL}=${TEST_LABEL_VALUE}`,
      '--workdir',
      '/app',
      '--entrypoint',
      'node',
      IMAGE,
      '-e',
      script,
      JSON.stringify([Object.keys(pkg.dependencies), devOnly]),
    );
    const found = JSON.parse(out);
    assert.deepEqual(found.app, ['dist', 'node_modules', 'package.json']);
    assert.deepEqual(found.dist, ['src']);
    assert.deepEqual(found.missing, [], 'production dependencies missing from the image');
    assert.deepEqual(found.present, [], 'development dependencies in the image');
    assert.equal(found.writable, false, 'berth can write its own code');
  });

  describe('started as a cluster starts it', function () {
    const name = `berth-image-test-${randomBytes(4).toString('hex')}`;
    let url = '';
    let started = false;

    const logs = async (): Promise<string> => {
      const { stdout, stderr } = await run('docker', ['logs', '--tail', '30', name]).catch((err: Error) => ({ stdout: err.message, stderr: '' }));
      return `${stdout}${stderr}`;
    };
    const get = async (p: string): Promise<{ status: number; body: any }> => {
      const res = await fetch(`${url}${p}`, { signal: AbortSignal.timeout(5000) });
      return { status: res.status, body: await res.json() };
    };

    before(async function () {
      await docker(
        'run',
        '-d',
        '--name',
        name,
        '--label',
        `${TEST_LABEL}=${TEST_LABEL_VALUE}`,
        // As manifests/ runs the pod: read-only root, no capabilities, no privilege escalation.
        '--read-only',
        '--tmpfs',
        '/tmp',
        '--mount',
        'type=tmpfs,destination=/tmp/apps',
        '--cap-drop',
        'ALL',
        '--security-opt',
        'no-new-privileges',
        IMAGE,
        'serve',
        '--host',
        '0.0.0.0',
        '--insecure-no-auth',
        '--db',
        '/tmp/berth.sqlite',
        '--apps-dir',
        '/tmp/apps',
      );
      started = true;
      const ip = await docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', name);
      assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/, `no IP address for ${name}`);
      url = `http://${ip}:8000`;
      try {
        await waitFor(`${url}/healthz to answer`, async () => (await get('/healthz')).status === 200, { timeoutMs: 30_000, intervalMs: 100 });
      } catch (err) {
        throw new Error(`${(err as Error).message}\ncontainer logs:\n${await logs()}`);
      }
    });

    after(async function () {
      if (started) await removeContainers([name]);
    });

    it('answers /healthz and creates an App through its API', async function () {
      const health = await get('/healthz');
      assert.equal(health.status, 200);
      assert.deepEqual(health.body, { status: 'ok' });

      const res = await fetch(`${url}/apps/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'image-hello', image: 'berth-test/busybox:latest', command: 'echo hello', envs: { WHO: 'image' } }),
        signal: AbortSignal.timeout(5000),
      });
      const created = (await res.json()) as any;
      assert.equal(res.status, 201, JSON.stringify(created));
      assert.equal(created.name, 'image-hello');
      assert.equal(created.kind, 'App');
      assert.ok(res.headers.get('location'), 'no Location header');

      const read = await get('/apps/image-hello/');
      assert.equal(read.status, 200);
      assert.equal(read.body.id, created.id);
      assert.deepEqual(read.body.envs, { WHO: 'image' });
    });

    it('runs its controller: /readyz names the unreachable docker engine, and a run waits Pending saying so', async function () {
      // Only the controller fails: no Docker engine inside the container. The store and the folder are ready.
      const ready = await waitFor(
        '/readyz to report the docker runtime checked',
        async () => {
          const answer = await get('/readyz');
          const checks = Object.fromEntries((answer.body.checks ?? []).map((c: any) => [c.name, c]));
          return checks.folder?.ready && /unreachable/.test(checks.controller?.reason ?? '') ? answer : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      assert.equal(ready.status, 503);
      assert.equal(ready.body.error, 'NotReady');
      assert.deepEqual(
        ready.body.details.map((d: any) => d.field),
        ['controller'],
        JSON.stringify(ready.body),
      );
      assert.match(
        ready.body.details[0].reason,
        /^docker engine at unix:\/\/\/var\/run\/docker\.sock is unreachable \(ping\): .*ENOENT \/var\/run\/docker\.sock/,
      );

      const res = await fetch(`${url}/apps/image-hello/run/`, { method: 'POST', signal: AbortSignal.timeout(5000) });
      const asked = (await res.json()) as any;
      assert.equal(res.status, 202, JSON.stringify(asked));
      const waiting = await waitFor(
        'the run to wait for the docker runtime',
        async () => {
          const { body } = await get(`/apps/image-hello/run/${asked.id}/`);
          return body.status?.reason === 'RuntimeUnavailable' ? body : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      assert.equal(waiting.status.phase, 'Pending');
      assert.match(waiting.status.message, /docker engine at unix:\/\/\/var\/run\/docker\.sock is unreachable/);
    });

    it('stops on SIGTERM and exits 0', async function () {
      const t0 = Date.now();
      await docker('stop', '-t', '30', name);
      const state = JSON.parse(await docker('inspect', '-f', '{{json .State}}', name));
      assert.equal(state.ExitCode, 0, await logs());
      assert.equal(state.OOMKilled, false);
      assert.ok(Date.now() - t0 < 20_000, `docker stop took ${Date.now() - t0} ms`);
    });
  });
});
