/**
 * The containment policy through the whole of berth (`berth serve` as a
 * child process): its flags, Apps refused at the API and in the apps folder
 * with 422 and per-file errors that change nothing, runs refused at launch
 * when the flags changed after an App was accepted, and a run's container
 * contained as the flags say.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { LABEL_APP } from '../../src/executors/executor';
import { serve, exited, freePort, json, runOf, type Berth } from '../helpers/berth-process';
import { REGISTRY_IMAGE, TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';
import { effectiveNetwork, removeContainersOf } from '../helpers/containers';

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');

/** Runs `berth serve …` that must refuse to start, and answers its exit code and stderr. */
function serveUntilExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'serve', '--db', path.join(tempDir(), 'b.sqlite'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

const app = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name }, spec });

describe('containment through berth serve', function () {
  this.timeout(60_000);

  const docker = new Docker();
  let dir: string;
  let berth: Berth | undefined;
  let names: string[];

  beforeEach(() => {
    dir = tempDir();
    fs.mkdirSync(path.join(dir, 'apps'));
    names = [];
  });

  afterEach(async () => {
    if (berth && berth.child.exitCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    berth = undefined;
    await removeContainersOf(names);
  });

  const start = async (flags: string[] = []) => (berth = await serve(dir, await freePort(), flags));
  const appName = () => {
    const name = uniqueName('contain');
    names.push(name);
    return name;
  };
  const post = (body: unknown) => json(`${berth!.url}/apps/`, { method: 'POST', body: JSON.stringify(body) });

  it('refuses an image outside --allowed-registries with 422 naming the image and the list, and stores nothing', async () => {
    await start(['--allowed-registries', '127.0.0.1:5000,ghcr.io/acme']);
    const name = appName();
    const refused = await post({ name, image: TEST_IMAGE });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.error, 'Invalid');
    assert.equal(
      refused.body.message,
      'spec.image: "berth-test/busybox:latest" (docker.io/berth-test/busybox) is not from a registry this server allows: 127.0.0.1:5000, ghcr.io/acme (--allowed-registries)',
    );
    assert.deepEqual((await json(`${berth!.url}/apps/`)).body, []);

    assert.equal((await post({ name, image: REGISTRY_IMAGE })).status, 201);
    const put = await json(`${berth!.url}/apps/${name}/`, { method: 'PUT', body: JSON.stringify({ image: TEST_IMAGE }) });
    assert.equal(put.status, 422);
    const patch = await json(`${berth!.url}/apps/${name}/`, { method: 'PATCH', body: JSON.stringify({ spec: { image: 'busybox:1.36' } }) });
    assert.equal(patch.status, 422);
    assert.match(patch.body.message, /"busybox:1\.36" \(docker\.io\/library\/busybox\) is not from a registry this server allows/);
    const kept = (await json(`${berth!.url}/apps/${name}/`)).body;
    assert.equal(kept.spec.image, REGISTRY_IMAGE);
    assert.equal(kept.metadata.generation, 1);
  });

  it('holds an apps-folder file whose App the policy refuses, reporting the field, line and column', async () => {
    await start(['--allowed-registries', '127.0.0.1:5000']);
    const [good, refused] = [appName(), appName()];
    fs.writeFileSync(
      path.join(dir, 'apps', 'batch.yaml'),
      `apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: ${good}}\nspec: {image: "${REGISTRY_IMAGE}"}\n---\n` +
        `apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: ${refused}}\nspec:\n  image: ${TEST_IMAGE}\n  capabilities: {add: [SYS_ADMIN]}\n`,
    );
    const report = await waitFor('batch.yaml to be reported', async () => {
      const files = (await json(`${berth!.url}/sources/`)).body.files as { path: string; state: string; errors: unknown[] }[];
      return files.find((file) => file.path === 'batch.yaml');
    });
    assert.equal(report.state, 'Error');
    assert.deepEqual(report.errors, [
      {
        document: 1,
        kind: 'App',
        name: refused,
        field: 'spec.image',
        reason: `"${TEST_IMAGE}" (docker.io/berth-test/busybox) is not from a registry this server allows: 127.0.0.1:5000 (--allowed-registries)`,
        line: 10,
        column: 10,
      },
      {
        document: 1,
        kind: 'App',
        name: refused,
        field: 'spec.capabilities.add',
        reason:
          'SYS_ADMIN is not allowed on this server (allowed: AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT); an operator can allow more with --allowed-capabilities default,SYS_ADMIN',
        line: 11,
        column: 23,
      },
    ]);
    // A file applies whole or not at all: the allowed App in it is not created either.
    assert.deepEqual((await json(`${berth!.url}/apps/`)).body, []);
  });

  it('refuses NET_ADMIN and SYS_ADMIN unless --allowed-capabilities allows them, and host or a pod-less network always', async () => {
    await start();
    const refused = await post(app(appName(), { image: TEST_IMAGE, capabilities: { add: ['NET_ADMIN'] } }));
    assert.equal(refused.status, 422);
    assert.deepEqual(
      refused.body.details.map((d: { field: string }) => d.field),
      ['spec.capabilities.add'],
    );
    assert.match(refused.body.message, /NET_ADMIN is not allowed on this server .*--allowed-capabilities default,NET_ADMIN$/);
    assert.equal((await post(app(appName(), { image: TEST_IMAGE, capabilities: { add: ['NET_BIND_SERVICE'] } }))).status, 201);

    const host = await post(app(appName(), { image: TEST_IMAGE, network: 'host' }));
    assert.equal(host.status, 422);
    assert.equal(host.body.message, "spec.network: must not be host: a container on the host's network reaches everything the host does");
    const pod = await post(app(appName(), { image: TEST_IMAGE, runtime: 'kubernetes', network: 'none' }));
    assert.equal(pod.status, 422);
    assert.match(pod.body.message, /^spec\.network: "none" cannot be set per pod on the kubernetes runtime: .*NetworkPolicy$/);

    berth!.child.kill('SIGTERM');
    await exited(berth!.child);
    await start(['--allowed-capabilities', 'default,NET_ADMIN']);
    assert.equal((await post(app(appName(), { image: TEST_IMAGE, capabilities: { add: ['NET_ADMIN'] } }))).status, 201);
  });

  it('fails at launch the run of an App the flags no longer allow, naming why, and creates no container', async () => {
    await start();
    const name = appName();
    assert.equal((await post({ name, image: TEST_IMAGE, command: 'echo never' })).status, 201);
    berth!.child.kill('SIGTERM');
    await exited(berth!.child);

    await start(['--allowed-registries', '127.0.0.1:5000']);
    const asked = await json(`${berth!.url}/apps/${name}/run/`, { method: 'POST', body: '{}' });
    assert.equal(asked.status, 202);
    const run = await waitFor('the run to fail', async () => {
      const current = await runOf(berth!.url, name, asked.body.id);
      return current.status.phase === 'Failed' ? current : undefined;
    });
    assert.equal(run.status.reason, 'LaunchFailed');
    assert.match(
      run.status.message,
      /the docker runtime refused to launch the run: .*spec\.image: "berth-test\/busybox:latest" .* is not from a registry this server allows: 127\.0\.0\.1:5000/,
    );
    assert.deepEqual(await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${name}`] } }), []);
  });

  it('contains a run as its flags say: no capabilities, no new privileges, the pids limit and the default network', async () => {
    await start(['--pids-limit', '24', '--default-network', 'none', '--default-memory', '128Mi', '--default-cpu', '500m', '--keep-containers']);
    const name = appName();
    const script = 'grep -E "^(CapEff|NoNewPrivs):" /proc/self/status; tail -n +3 /proc/net/dev | cut -d: -f1; for i in $(seq 1 40); do sleep 5 & done';
    assert.equal((await post(app(name, { image: TEST_IMAGE, command: ['sh', '-c', script] }))).status, 201);
    const asked = await json(`${berth!.url}/apps/${name}/run/`, { method: 'POST', body: '{}' });
    const run = await waitFor('the run to finish', async () => {
      const current = await runOf(berth!.url, name, asked.body.id);
      return current.status.finishedAt ? current : undefined;
    });
    const logs = await (await fetch(`${berth!.url}/apps/${name}/run/${run.id}/logs/`)).text();
    assert.match(logs, /^CapEff:\s+0{16}$/m);
    assert.match(logs, /^NoNewPrivs:\s+1$/m);
    assert.match(logs, /^\s*lo$/m);
    assert.doesNotMatch(logs, /eth0/);
    assert.match(logs, /can't fork/);
    const info = await docker.getContainer(run.status.containerName).inspect();
    const host = info.HostConfig;
    assert.equal(host.PidsLimit, 24);
    assert.equal(await effectiveNetwork(info), 'none');
    assert.equal(host.Memory, 128 * 1024 * 1024);
    assert.equal(host.NanoCpus, 500_000_000);
  });

  it('refuses containment flags it cannot read, naming the flag', async () => {
    // One of each kind of check; the parsers' other refusals are unit tests (test/unit/containment.test.ts).
    const cases: [string[], RegExp][] = [
      [['--allowed-capabilities', 'NET_ADMIM'], /--allowed-capabilities.*NET_ADMIM: not Linux capabilities/],
      [['--default-memory', '1Mi'], /--default-memory.*must be at least 6Mi/],
      [
        ['--log-limit', '64Mi'],
        /--log-limit \(67108864 bytes\) is more than Docker keeps of a container's output \(--log-max-size × --log-max-file = 31457280 bytes\)/,
      ],
    ];
    for (const [flags, message] of cases) {
      const { code, stderr } = await serveUntilExit(flags);
      assert.equal(code, 2, `${flags.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
    }
  });
});
