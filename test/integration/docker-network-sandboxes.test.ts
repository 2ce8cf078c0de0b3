/**
 * Network sandboxes on a real engine (src/executors/docker/network-sandboxes.ts):
 * runs with network none join a namespace made ahead, one run per sandbox at a
 * time, and a run never depends on a sandbox being there.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { DockerExecutor } from '../../src/executors/docker';
import { containerCreateOptions } from '../../src/executors/docker/container-spec';
import { type EngineCall, LABEL_NETWORK_SANDBOX, NetworkSandboxes, joinedContainer } from '../../src/executors/docker/network-sandboxes';
import { SANDBOX_COMMAND, SANDBOX_IMAGE, importSandboxImage, oneFileTar, pauseProgram } from '../../src/executors/docker/sandbox-image';
import { LABEL_APP, LABEL_MANAGED_BY, MANAGED_BY, workloadName, type LaunchRequest, type Observation } from '../../src/executors/executor';
import { DEFAULT_CONTAINMENT } from '../../src/model/containment';
import type { AppSpec } from '../../src/model/types';
import { readText } from '../contract/executor.contract';
import { appSpec, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

describe('Docker network sandboxes', function () {
  this.timeout(60_000);

  const docker = new Docker();
  let appName: string;
  /** Sandboxes this test saw, removed after it with its containers. */
  let sandboxes: Set<string>;

  beforeEach(async () => {
    appName = uniqueName('sandbox');
    sandboxes = new Set();
    // Idle sandboxes other servers left on this engine would be chosen at random, and count against the limits here.
    await new DockerExecutor().close();
  });

  afterEach(async () => {
    const leftovers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${appName}`] } });
    await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    await Promise.all(
      [...sandboxes].map((id) =>
        docker
          .getContainer(id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
  });

  const request = (spec: Partial<AppSpec>): LaunchRequest => {
    const runUid = randomUUID();
    return { name: workloadName(runUid, 1), runUid, runName: uniqueName('run'), appName, attempt: 1, template: appSpec({ network: 'none', ...spec }) };
  };

  /** The sandbox a container joined, remembered for cleanup; undefined when it made its own namespace. */
  const sandboxOf = async (name: string): Promise<string | undefined> => {
    const joined = joinedContainer((await docker.getContainer(name).inspect()).HostConfig.NetworkMode);
    if (joined) sandboxes.add(joined);
    return joined;
  };

  /** A sandbox as a maker that went away between creating and starting it leaves one (an engine restart, a kill). */
  const unstartedSandbox = async (): Promise<Docker.Container> => {
    await importSandboxImage(docker, AbortSignal.timeout(30_000));
    const unstarted = await docker.createContainer({
      name: uniqueName('berth-network-sandbox'),
      Image: SANDBOX_IMAGE,
      Cmd: SANDBOX_COMMAND,
      Labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_NETWORK_SANDBOX]: 'none' },
      HostConfig: { NetworkMode: 'none' },
    });
    sandboxes.add(unstarted.id);
    return unstarted;
  };

  /** Waits until the engine has no container `id`. */
  const removed = (what: string, id: string, timeoutMs?: number) =>
    waitFor(`${what} to be removed`, async () => (await docker.listContainers({ all: true, filters: { id: [id] } })).length === 0, { timeoutMs });

  const exited = (on: DockerExecutor, name: string) =>
    waitFor(`${name} to exit`, async () => {
      const observation = await on.observe(name);
      return observation.state === 'exited' ? (observation as Extract<Observation, { state: 'exited' }>) : undefined;
    });

  /** A sandbox on `none` left idle: the one a run of `true` joined, once that run has exited. */
  const idleSandbox = async (on: DockerExecutor): Promise<string> => {
    const run = request({ command: ['true'] });
    await on.launch(run);
    const sandbox = await sandboxOf(run.name);
    assert.ok(sandbox, `${run.name} joined a sandbox`);
    await exited(on, run.name);
    return sandbox;
  };

  it('makes a 129-byte static program and a one-file archive the engine imports', () => {
    const program = pauseProgram();
    assert.equal(program.length, 129);
    assert.deepEqual([...program.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
    const archive = oneFileTar('pause', program);
    assert.equal(archive.length, 512 * 4);
    assert.equal(archive.subarray(0, 5).toString(), 'pause');
    assert.deepEqual(archive.subarray(512, 512 + 129), program);
  });

  it('runs a network-none run in a sandbox: only loopback, its own exit and output, and the sandbox reused by the next run', async () => {
    const executor = new DockerExecutor({ networkSandboxes: 1 });
    const first = request({ command: ['sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1; exit 3'] });
    await executor.launch(first);
    const sandbox = await sandboxOf(first.name);
    assert.ok(sandbox, 'the run joined no sandbox');
    const held = await docker.getContainer(sandbox).inspect();
    assert.equal(held.Config.Labels[LABEL_NETWORK_SANDBOX], 'none');
    assert.equal(held.Config.Image, SANDBOX_IMAGE);
    assert.equal(held.HostConfig.NetworkMode, 'none');
    assert.equal(held.State.Status, 'running');
    assert.equal((await exited(executor, first.name)).exitCode, 3);
    assert.deepEqual(
      (await readText(await executor.logs(first.name)))
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean),
      ['lo'],
    );

    // The first container still exists but has exited: the sandbox is free for the next run.
    const second = request({ command: ['true'] });
    await executor.launch(second);
    assert.equal(await sandboxOf(second.name), sandbox);
    assert.equal((await exited(executor, second.name)).exitCode, 0);
  });

  it('gives runs that run at once a sandbox each, so each binds the same loopback port', async () => {
    const executor = new DockerExecutor({ networkSandboxes: 3 });
    // Each listens on port 7000 (its loopback is all it has) for a second; in one namespace the second bind would fail.
    const launches = [1, 2, 3].map(() => request({ command: ['sh', '-c', 'nc -l -p 7000 & sleep 1; kill -0 $! && echo listening'] }));
    await Promise.all(launches.map((launch) => executor.launch(launch)));
    const joined = await Promise.all(launches.map((launch) => sandboxOf(launch.name)));
    assert.ok(
      joined.every((id) => id !== undefined),
      `each run joins a sandbox: ${joined}`,
    );
    assert.equal(new Set(joined).size, 3, `three runs at once share no sandbox: ${joined}`);
    for (const launch of launches) {
      assert.equal((await exited(executor, launch.name)).exitCode, 0);
      assert.match(await readText(await executor.logs(launch.name)), /listening/);
    }
  });

  it('makes its own namespace past the limit, when turned off, and for an App that may change one', async () => {
    const one = new DockerExecutor({ networkSandboxes: 1 });
    const long = request({ command: ['sleep', '30'] });
    await one.launch(long);
    assert.ok(await sandboxOf(long.name));
    // Sandboxes left by other servers on this engine count against the limit too; either way this one finds none free.
    const beyond = request({ command: ['true'] });
    await one.launch(beyond);
    assert.equal((await docker.getContainer(beyond.name).inspect()).HostConfig.NetworkMode, 'none');

    const off = request({ command: ['true'] });
    await new DockerExecutor({ networkSandboxes: 0 }).launch(off);
    assert.equal((await docker.getContainer(off.name).inspect()).HostConfig.NetworkMode, 'none');

    const admin = request({ command: ['true'], capabilities: { add: ['NET_ADMIN'] } });
    await new DockerExecutor({ networkSandboxes: 4, containment: { ...DEFAULT_CONTAINMENT, allowedCapabilities: ['NET_ADMIN'] } }).launch(admin);
    assert.equal((await docker.getContainer(admin.name).inspect()).HostConfig.NetworkMode, 'none');
  });

  it('puts a bridge run in a sandbox on the bridge, with the sandbox’s address, never in one of another network', async () => {
    const executor = new DockerExecutor({ networkSandboxes: 2 });
    const noneSandbox = await idleSandbox(executor);

    const bridged = request({ network: 'bridge', command: ['sh', '-c', 'ip -4 -o addr show eth0'] });
    await executor.launch(bridged);
    const sandbox = await sandboxOf(bridged.name);
    assert.ok(sandbox && sandbox !== noneSandbox, `a bridge sandbox, not ${noneSandbox}`);
    const held = await docker.getContainer(sandbox).inspect();
    assert.equal(held.HostConfig.NetworkMode, 'bridge');
    assert.equal(held.Config.Labels[LABEL_NETWORK_SANDBOX], 'bridge');
    assert.equal((await exited(executor, bridged.name)).exitCode, 0);
    const address = held.NetworkSettings.Networks.bridge.IPAddress;
    assert.ok(address, 'the sandbox has an address on the bridge');
    assert.match(await readText(await executor.logs(bridged.name)), new RegExp(`inet ${address.replaceAll('.', '\\.')}/`));
  });

  it('makes the container again with its own namespace when its sandbox is gone before it starts', async () => {
    const executor = new DockerExecutor({ networkSandboxes: 1 });
    const sandbox = await idleSandbox(executor);
    // A container made to join the sandbox (as a launch interrupted after its create would leave it), then the sandbox stops.
    const launch = request({ command: ['sh', '-c', 'echo ran'] });
    await docker.createContainer(containerCreateOptions(launch, DEFAULT_CONTAINMENT, sandbox));
    await docker.getContainer(sandbox).remove({ force: true });

    await executor.launch(launch);
    const info = await docker.getContainer(launch.name).inspect();
    assert.equal(info.HostConfig.NetworkMode, 'none');
    assert.equal((await exited(executor, launch.name)).exitCode, 0);
    assert.equal((await readText(await executor.logs(launch.name))).trim(), 'ran');
  });

  it('makes a new sandbox when the one there has stopped, and removes the stopped one', async () => {
    const executor = new DockerExecutor({ networkSandboxes: 1 });
    const stopped = await idleSandbox(executor);
    // As an engine restart leaves it (sandboxes are not restarted).
    await docker.getContainer(stopped).kill();

    const second = request({ command: ['true'] });
    await executor.launch(second);
    const fresh = await sandboxOf(second.name);
    assert.ok(fresh && fresh !== stopped, `a new sandbox, not the stopped ${stopped}`);
    assert.equal((await exited(executor, second.name)).exitCode, 0);
    await removed('the stopped sandbox', stopped);
  });

  it('neither joins nor counts a sandbox left created but never started, and leaves a new one to its maker', async () => {
    const executor = new DockerExecutor({ networkSandboxes: 1 });
    const unstarted = await unstartedSandbox();

    const run = request({ command: ['true'] });
    await executor.launch(run);
    const joined = await sandboxOf(run.name);
    assert.ok(joined && joined !== unstarted.id, `a started sandbox within the limit of 1, not the unstarted ${unstarted.id}`);
    assert.equal((await exited(executor, run.name)).exitCode, 0);
    await executor.close();
    // Younger than the time a maker may take between the two steps: it may still be started.
    assert.equal((await unstarted.inspect()).State.Status, 'created');
  });

  it('removes a sandbox left created but never started once it is older than a maker takes', async () => {
    // The executor's engine calls, with a grace of one second instead of a minute.
    const call: EngineCall = (_doing, request) => request(AbortSignal.timeout(30_000));
    const here = new NetworkSandboxes(docker, call, 1, 300_000, 1000);
    const unstarted = await unstartedSandbox();
    // The engine gives its creation time in whole seconds.
    await waitFor('the unstarted sandbox to be older than the grace', async () => {
      const [found] = await docker.listContainers({ all: true, filters: { id: [unstarted.id] } });
      return found.Created < (Date.now() - 1000) / 1000;
    });

    // Making the sandbox this reservation needs clears away the ones no run can join.
    const reservation = await here.reserve('none');
    assert.ok(reservation && reservation.id !== unstarted.id, `a new sandbox, not the unstarted ${unstarted.id}`);
    sandboxes.add(reservation.id);
    reservation.settle();
    await removed('the unstarted sandbox', unstarted.id);
    await here.removeIdle();
    await removed('the new, idle sandbox, on close,', reservation.id);
  });

  it('removes a sandbox no run has used for the idle time, and keeps one a long run uses past it', async () => {
    const executor = new DockerExecutor({ networkSandboxes: 2, networkSandboxIdleMs: 1000 });
    const short = request({ command: ['true'] });
    const long = request({ command: ['sleep', '4'] });
    await Promise.all([executor.launch(short), executor.launch(long)]);
    const shortOne = await sandboxOf(short.name);
    const longOne = await sandboxOf(long.name);
    assert.ok(shortOne && longOne && shortOne !== longOne);
    await removed('the unused sandbox', shortOne, 10_000);
    // Past the idle time while its run goes on: kept, and free again once the run has ended.
    assert.equal((await docker.getContainer(longOne).inspect()).State.Status, 'running');
    await exited(executor, long.name);
    await removed('the sandbox of the ended run, in turn,', longOne, 10_000);
    await executor.close();
  });

  it('removes its idle sandboxes on close and keeps the ones a container uses', async () => {
    const executor = new DockerExecutor({ networkSandboxes: 2 });
    const done = request({ command: ['true'] });
    const busy = request({ command: ['sleep', '30'] });
    await Promise.all([executor.launch(done), executor.launch(busy)]);
    const idleOne = await sandboxOf(done.name);
    const busyOne = await sandboxOf(busy.name);
    assert.ok(idleOne && busyOne && idleOne !== busyOne);
    await exited(executor, done.name);
    await executor.remove(done.name);

    await executor.close();
    await assert.rejects(docker.getContainer(idleOne).inspect(), /no such container/i);
    assert.equal((await docker.getContainer(busyOne).inspect()).State.Status, 'running');
  });
});
