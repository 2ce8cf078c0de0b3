/**
 * The containment every Docker container gets (src/model/containment.ts), on
 * a real engine: what the engine records in HostConfig, and what the process
 * inside really can and cannot do.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { RuntimeRefusedError } from '../../src/errors';
import { DockerExecutor } from '../../src/executors/docker';
import { LABEL_APP, workloadName, type LaunchRequest, type Observation } from '../../src/executors/executor';
import { DEFAULT_CONTAINMENT, type ContainmentPolicy } from '../../src/model/containment';
import type { AppSpec } from '../../src/model/types';
import { readText } from '../contract/executor.contract';
import { effectiveNetwork } from '../helpers/containers';
import { appSpec, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

describe('Docker containment', function () {
  this.timeout(30_000);

  const docker = new Docker();
  const executor = new DockerExecutor();
  let appName: string;
  let storeId: string;
  let networks: string[];

  beforeEach(() => {
    appName = uniqueName('contain');
    storeId = uniqueName('store');
    networks = [];
  });

  // Sandboxes the runs with network none joined: the server's shutdown would remove them.
  after(() => executor.close());

  afterEach(async () => {
    const leftovers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${appName}`] } });
    await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    await Promise.all(networks.map((name) => docker.getNetwork(name).remove()));
  });

  const request = (spec: Partial<AppSpec>): LaunchRequest => {
    const runUid = randomUUID();
    return { name: workloadName(runUid, 1), runUid, runName: uniqueName('run'), appName, attempt: 1, storeId, template: appSpec(spec) };
  };

  const withPolicy = (changes: Partial<ContainmentPolicy>) => new DockerExecutor({ containment: { ...DEFAULT_CONTAINMENT, ...changes } });

  /** Launches, waits for the exit, and answers the exit and the output. */
  const run = async (spec: Partial<AppSpec>, on: DockerExecutor = executor) => {
    const launch = request(spec);
    await on.launch(launch);
    const exit = await waitFor(`${launch.name} to exit`, async () => {
      const observation = await on.observe(launch.name);
      return observation.state === 'exited' ? (observation as Extract<Observation, { state: 'exited' }>) : undefined;
    });
    return { exit, output: await readText(await on.logs(launch.name)), info: await docker.getContainer(launch.name).inspect() };
  };

  const ownContainers = async () => docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${appName}`] } });

  it('creates every container with no capabilities, no new privileges, a pids limit, default limits, bounded logs and the bridge', async () => {
    const launch = request({ command: ['sh', '-c', 'sleep 30'] });
    await executor.launch(launch);
    const info = await docker.getContainer(launch.name).inspect();
    const host = info.HostConfig;
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.deepEqual(host.CapAdd ?? [], []);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges']);
    assert.equal(host.PidsLimit, 1024);
    assert.equal(host.Memory, 1024 * 1024 * 1024);
    assert.equal(host.MemorySwap, 1024 * 1024 * 1024);
    assert.equal(host.NanoCpus, 1_000_000_000);
    assert.deepEqual(host.LogConfig, { Type: 'json-file', Config: { 'max-size': String(10 * 1024 * 1024), 'max-file': '3' } });
    assert.equal(await effectiveNetwork(info), 'bridge');
  });

  it('keeps the App’s own limits over the defaults, and sets none when the server has no default', async () => {
    const own = request({ command: ['true'], resources: { memory: '64Mi' } });
    await executor.launch(own);
    const ownHost = (await docker.getContainer(own.name).inspect()).HostConfig;
    assert.equal(ownHost.Memory, 64 * 1024 * 1024);
    assert.equal(ownHost.NanoCpus, 1_000_000_000);

    const unlimited = withPolicy({ defaultResources: {}, pidsLimit: 0 });
    const bare = request({ command: ['true'] });
    await unlimited.launch(bare);
    const bareHost = (await docker.getContainer(bare.name).inspect()).HostConfig;
    assert.equal(bareHost.Memory, 0);
    assert.equal(bareHost.NanoCpus, 0);
    assert.ok(!bareHost.PidsLimit, `PidsLimit ${bareHost.PidsLimit}`);
  });

  it('runs a process that has no effective capabilities, cannot gain privileges, and cannot chown', async () => {
    const { exit, output } = await run({
      command: ['sh', '-c', 'grep -E "^(CapEff|CapBnd|NoNewPrivs):" /proc/self/status; touch /tmp/f; chown 1:1 /tmp/f || echo chown refused'],
    });
    assert.equal(exit.exitCode, 0);
    assert.match(output, /^CapEff:\s+0000000000000000$/m);
    assert.match(output, /^CapBnd:\s+0000000000000000$/m);
    assert.match(output, /^NoNewPrivs:\s+1$/m);
    assert.match(output, /Operation not permitted/);
    assert.match(output, /chown refused/);
  });

  it('adds back the capabilities the App names, and only those', async () => {
    const { info, output } = await run({
      capabilities: { add: ['CHOWN', 'NET_BIND_SERVICE'] },
      command: ['sh', '-c', 'grep "^CapEff:" /proc/self/status; touch /tmp/f; chown 1:1 /tmp/f && echo chowned'],
    });
    assert.deepEqual([...(info.HostConfig.CapAdd ?? [])].sort(), ['CHOWN', 'NET_BIND_SERVICE']);
    // CAP_CHOWN is bit 0, CAP_NET_BIND_SERVICE bit 10.
    assert.match(output, /^CapEff:\s+0000000000000401$/m);
    assert.match(output, /chowned/);
  });

  it('lets processes gain privileges only when the server allows it', async () => {
    const { info, output } = await run({ command: ['grep', '^NoNewPrivs:', '/proc/self/status'] }, withPolicy({ allowPrivilegeEscalation: true }));
    assert.deepEqual(info.HostConfig.SecurityOpt ?? [], []);
    assert.match(output, /^NoNewPrivs:\s+0$/m);
  });

  it('stops a fork bomb at the pids limit', async () => {
    const { info, output } = await run({ command: ['sh', '-c', 'for i in $(seq 1 40); do sleep 5 & done; echo started'] }, withPolicy({ pidsLimit: 16 }));
    assert.equal(info.HostConfig.PidsLimit, 16);
    assert.match(output, /can't fork/);
  });

  it('gives a container with network none only the loopback interface', async () => {
    const { info, output } = await run({ network: 'none', command: ['sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1'] });
    assert.equal(await effectiveNetwork(info), 'none');
    assert.deepEqual(
      output
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean),
      ['lo'],
    );
  });

  it('puts an App without a network on the server’s default network', async () => {
    const { info, output } = await run({ command: ['sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1'] }, withPolicy({ defaultNetwork: 'none' }));
    assert.equal(await effectiveNetwork(info), 'none');
    assert.deepEqual(
      output
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean),
      ['lo'],
    );
  });

  it('joins a named network that exists', async () => {
    const name = uniqueName('berth-net');
    await docker.createNetwork({ Name: name, Labels: { [LABEL_APP]: appName } });
    networks.push(name);
    const { info, output } = await run({ network: name, command: ['sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1'] });
    assert.equal(info.HostConfig.NetworkMode, name);
    assert.ok(Object.keys(info.NetworkSettings.Networks).includes(name));
    assert.deepEqual(
      output
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean)
        .sort(),
      ['eth0', 'lo'],
    );
  });

  it('refuses a named network that does not exist with RuntimeRefusedError naming it, creating nothing', async () => {
    const name = uniqueName('no-such-net');
    await assert.rejects(executor.launch(request({ network: name })), (error: Error) => {
      assert.ok(error instanceof RuntimeRefusedError, `${error.name}: ${error.message}`);
      assert.match(error.message, new RegExp(`network "${name}" \\(spec\\.network\\) does not exist on the docker engine`));
      return true;
    });
    await assert.rejects(withPolicy({ defaultNetwork: name }).launch(request({})), /\(the server's --default-network\) does not exist/);
    assert.deepEqual(await ownContainers(), []);
  });

  it('runs as the App’s user', async () => {
    const { info, output } = await run({ user: '1000:2000', command: ['sh', '-c', 'echo $(id -u):$(id -g)'] });
    assert.equal(info.Config.User, '1000:2000');
    assert.equal(output, '1000:2000\n');
  });

  it('refuses at launch what the server no longer allows, before pulling or creating anything', async () => {
    const narrow = withPolicy({ allowedRegistries: ['127.0.0.1:5000'], allowedCapabilities: ['NET_BIND_SERVICE'] });
    await assert.rejects(narrow.launch(request({ imagePullPolicy: 'Always' })), (error: Error) => {
      assert.ok(error instanceof RuntimeRefusedError, `${error.name}: ${error.message}`);
      assert.match(
        error.message,
        /spec\.image: "berth-test\/busybox:latest" \(docker\.io\/berth-test\/busybox\) is not from a registry this server allows: 127\.0\.0\.1:5000/,
      );
      return true;
    });
    await assert.rejects(narrow.launch(request({ image: '127.0.0.1:5000/berth-test/busybox:latest', capabilities: { add: ['CHOWN'] } })), (error: Error) => {
      assert.ok(error instanceof RuntimeRefusedError);
      assert.match(error.message, /spec\.capabilities\.add: CHOWN is not allowed on this server \(allowed: NET_BIND_SERVICE\)/);
      return true;
    });
    assert.deepEqual(await ownContainers(), []);
  });
});
