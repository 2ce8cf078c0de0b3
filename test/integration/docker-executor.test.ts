import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ConfigError, ImagePullError, NotFoundError, RuntimeUnavailableError } from '../../src/errors';
import { DockerExecutor } from '../../src/executors/docker';
import { containerCreateOptions } from '../../src/executors/docker/container-spec';
import { watchEngineEvents } from '../../src/executors/docker/event-watch';
import { LogFrameDecoder } from '../../src/executors/docker/log-frames';
import {
  LABEL_APP,
  LABEL_ATTEMPT,
  LABEL_MANAGED_BY,
  LABEL_RUN,
  workloadName,
  type LaunchRequest,
  type Observation,
  type WorkloadEvent,
} from '../../src/executors/executor';
import type { AppSpec } from '../../src/model/types';
import { executorContract, readText } from '../contract/executor.contract';
import { REGISTRY_IMAGE, TEST_IMAGE, appSpec, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

executorContract('DockerExecutor', () => new DockerExecutor(), { image: TEST_IMAGE });

describe('DockerExecutor on a real engine', function () {
  this.timeout(30_000);

  const docker = new Docker();
  const executor = new DockerExecutor();
  let appName: string;

  beforeEach(() => {
    appName = uniqueName('docker');
  });

  afterEach(async () => {
    const leftovers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${appName}`] } });
    await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
  });

  const request = (spec: Partial<AppSpec>): LaunchRequest => {
    const runUid = randomUUID();
    return { name: workloadName(runUid), runUid, runName: uniqueName('run'), appName, attempt: 1, template: appSpec(spec) };
  };

  const waitForExit = (name: string) =>
    waitFor(`${name} to exit`, async () => {
      const observation = await executor.observe(name);
      return observation.state === 'exited' ? (observation as Extract<Observation, { state: 'exited' }>) : undefined;
    });

  const imagePresent = async (image: string): Promise<boolean> =>
    docker
      .getImage(image)
      .inspect()
      .then(
        () => true,
        (error: { statusCode?: number }) => {
          if (error.statusCode === 404) return false;
          throw error;
        },
      );

  describe('limits and isolation', () => {
    it('records an OOM kill under a small memory limit', async () => {
      const launch = request({
        command: ['sh', '-c', 'x=$(head -c 64m /dev/zero | tr "\\0" a); echo ${#x}'],
        resources: { memory: '16Mi' },
      });
      await executor.launch(launch);
      const exited = await waitForExit(launch.name);
      assert.equal(exited.oomKilled, true);
      assert.equal(exited.exitCode, 137);
    });

    it('creates the container with the limits, labels and nothing reaching outside it', async () => {
      const launch = request({ command: ['sh', '-c', 'sleep 30'], resources: { cpu: '500m', memory: '256Mi' } });
      await executor.launch(launch);
      const info = await docker.getContainer(launch.name).inspect();
      assert.equal(info.HostConfig.NanoCpus, 500_000_000);
      assert.equal(info.HostConfig.Memory, 256 * 1024 * 1024);
      assert.equal(info.HostConfig.MemorySwap, 256 * 1024 * 1024);
      assert.equal(info.HostConfig.Privileged, false);
      assert.deepEqual(info.HostConfig.Binds ?? [], []);
      assert.deepEqual(info.HostConfig.PortBindings ?? {}, {});
      assert.deepEqual(info.Mounts, []);
      assert.equal(info.Config.Tty, false);
      assert.deepEqual(info.Config.Labels, {
        [LABEL_RUN]: launch.runUid,
        [LABEL_APP]: appName,
        [LABEL_ATTEMPT]: '1',
        [LABEL_MANAGED_BY]: 'berth',
      });
    });

    it("runs the image's own command when the command is empty", async () => {
      // TEST_IMAGE has no CMD of its own, so give a copy of it one.
      const image = `berth-test/with-cmd:${uniqueName('cmd')}`;
      const base = await docker.createContainer({ Image: TEST_IMAGE, Cmd: ['true'], Labels: { [LABEL_APP]: appName } });
      await base.commit({ repo: image.split(':')[0], tag: image.split(':')[1], changes: ['CMD ["sh", "-c", "echo from the image"]'] });
      try {
        const launch = request({ image, command: [], imagePullPolicy: 'Never' });
        await executor.launch(launch);
        assert.equal((await waitForExit(launch.name)).exitCode, 0);
        assert.equal(await readText(await executor.logs(launch.name)), 'from the image\n');
        await executor.remove(launch.name);
      } finally {
        await docker.getImage(image).remove({ force: true });
      }
    });
  });

  describe('launch', () => {
    it('starts a container an earlier launch created but did not start', async () => {
      const launch = request({ command: ['sh', '-c', 'echo adopted'] });
      await docker.createContainer(containerCreateOptions(launch));
      await executor.launch(launch);
      assert.equal((await waitForExit(launch.name)).exitCode, 0);
      assert.equal(await readText(await executor.logs(launch.name)), 'adopted\n');
    });

    it('reports a command that cannot start as an exit with the reason, not a launch error', async () => {
      const launch = request({ command: ['/no/such/program'] });
      await executor.launch(launch);
      const exited = await waitForExit(launch.name);
      assert.equal(exited.exitCode, 127);
      assert.match(exited.message ?? '', /no such file or directory/);
      await executor.launch(launch);
    });

    it('refuses logs of a container that does not exist with NotFoundError', async () => {
      const name = workloadName(randomUUID());
      await assert.rejects(executor.logs(name), (error: unknown) => {
        assert.ok(error instanceof NotFoundError);
        assert.equal(error.message, `container "${name}" not found`);
        return true;
      });
    });
  });

  describe('images', () => {
    it('pulls an absent image from a registry with IfNotPresent', async () => {
      // Untag only: the same layers stay under TEST_IMAGE, so tests running beside this one keep theirs.
      if (await imagePresent(REGISTRY_IMAGE)) await docker.getImage(REGISTRY_IMAGE).remove({ noprune: true });
      assert.equal(await imagePresent(REGISTRY_IMAGE), false);
      const launch = request({ image: REGISTRY_IMAGE, command: ['sh', '-c', 'echo pulled'], imagePullPolicy: 'IfNotPresent' });
      await executor.launch(launch);
      assert.equal(await imagePresent(REGISTRY_IMAGE), true);
      assert.equal((await waitForExit(launch.name)).exitCode, 0);
      assert.equal(await readText(await executor.logs(launch.name)), 'pulled\n');
    });

    it('pulls again with Always', async () => {
      const launch = request({ image: REGISTRY_IMAGE, command: ['sh', '-c', 'exit 0'], imagePullPolicy: 'Always' });
      await executor.launch(launch);
      assert.equal((await waitForExit(launch.name)).exitCode, 0);
    });

    it("fails a pull of a missing tag with ImagePullError and the registry's message", async () => {
      const image = `127.0.0.1:5000/berth-test/busybox:${uniqueName('missing')}`;
      const launch = request({ image });
      await assert.rejects(executor.launch(launch), (error: unknown) => {
        assert.ok(error instanceof ImagePullError);
        assert.equal(error.image, image);
        assert.equal(error.retryable, false);
        assert.match(error.message, new RegExp(`^pulling image "${image.replace(/\./g, '\\.')}" failed: .*manifest unknown`));
        return true;
      });
      assert.deepEqual(await executor.observe(launch.name), { state: 'absent' });
    });

    it('fails a pull from an unreachable registry with ImagePullError naming the cause', async () => {
      const image = '127.0.0.1:1/berth-test/busybox:latest';
      await assert.rejects(executor.launch(request({ image })), (error: unknown) => {
        assert.ok(error instanceof ImagePullError);
        assert.match(error.message, /connection refused/);
        return true;
      });
    });

    it('fails with ImagePullError, without pulling, when the image is absent and the policy is Never', async () => {
      const image = `127.0.0.1:5000/berth-test/busybox:${uniqueName('never')}`;
      const launch = request({ image, imagePullPolicy: 'Never' });
      await assert.rejects(executor.launch(launch), (error: unknown) => {
        assert.ok(error instanceof ImagePullError);
        assert.equal(
          error.message,
          `image "${image}" is not present on the docker engine at ${executor.dockerHost}, and imagePullPolicy is Never`,
        );
        return true;
      });
      assert.deepEqual(await executor.observe(launch.name), { state: 'absent' });
    });
  });

  describe('events', () => {
    it('misses no event that happens before the watch connects', async () => {
      const controller = new AbortController();
      const actions: string[] = [];
      const launch = request({ command: ['sh', '-c', 'exit 0'] });
      executor.watch((event) => event.runUid === launch.runUid && actions.push(event.action), controller.signal);
      try {
        await executor.launch(launch);
        await waitForExit(launch.name);
        await executor.remove(launch.name);
        await waitFor('the destroy event', () => actions.includes('destroy'));
        assert.deepEqual(
          actions.filter((action) => ['start', 'die', 'destroy'].includes(action)),
          ['start', 'die', 'destroy'],
        );
      } finally {
        controller.abort();
      }
    });

    it('reconnects when the stream ends, asking for events since the last one seen', async () => {
      // A stand-in engine whose first event stream ends after one event, so the reconnect can be seen exactly.
      const queries: { since: string }[] = [];
      // Event times after the watch began, in whole multiples of 4 ms so the JSON number is exact.
      const sentNanos: number[] = [];
      const streams: PassThrough[] = [];
      const engine = {
        getEvents: async (query: { since: string }) => {
          queries.push(query);
          const stream = new PassThrough();
          streams.push(stream);
          const runUid = `run-${queries.length}`;
          sentNanos.push((Math.floor(Date.now() / 4) * 4 + 60_000) * 1e6);
          stream.write(`${JSON.stringify({ Type: 'container', Action: 'die', timeNano: sentNanos[sentNanos.length - 1], Actor: { Attributes: { [LABEL_RUN]: runUid } } })}\n`);
          if (queries.length === 1) stream.end();
          return stream;
        },
      } as unknown as Docker;
      const events: WorkloadEvent[] = [];
      const errors: Error[] = [];
      const controller = new AbortController();
      watchEngineEvents(engine, (event) => events.push(event), controller.signal, { initialBackoffMs: 1, maxBackoffMs: 1, onError: (error) => errors.push(error) }, (error) => error as Error);
      try {
        await waitFor('the event from the second connection', () => events.length === 2);
      } finally {
        controller.abort();
      }
      assert.deepEqual(events, [
        { runUid: 'run-1', action: 'die' },
        { runUid: 'run-2', action: 'die' },
      ]);
      assert.match(queries[0].since, /^\d{10}\.\d{9}$/);
      const first = BigInt(sentNanos[0]);
      assert.equal(queries[1].since, `${first / 1_000_000_000n}.${String(first % 1_000_000_000n).padStart(9, '0')}`);
      assert.deepEqual(errors.map((error) => error.message), ['the engine closed the event stream']);
      await waitFor('the open stream to be closed on abort', () => streams[1].destroyed);
    });
  });

  describe('log frames', () => {
    const frame = (stream: 1 | 2, text: string): Buffer => {
      const payload = Buffer.from(text);
      const header = Buffer.alloc(8);
      header.writeUInt8(stream, 0);
      header.writeUInt32BE(payload.length, 4);
      return Buffer.concat([header, payload]);
    };

    it('joins stdout and stderr frames in order, however the bytes are split', async () => {
      const bytes = Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err ü\n'), frame(1, 'out 2\n')]);
      // One byte at a time: headers and a multi-byte character are both cut in half.
      const chunks = [...bytes].map((byte) => Buffer.from([byte]));
      const decoder = new LogFrameDecoder();
      decoder.setEncoding('utf8');
      assert.equal(await readText(Readable.from(chunks).pipe(decoder)), 'out 1\nerr ü\nout 2\n');
    });

    it('passes through a stream that is not framed (a TTY container)', async () => {
      const decoder = new LogFrameDecoder();
      assert.equal(await readText(Readable.from([Buffer.from('plain terminal output\n')]).pipe(decoder)), 'plain terminal output\n');
    });
  });

  describe('an unreachable engine', () => {
    const unreachable: [string, RegExp][] = [
      ['unix:///tmp/nonexistent.sock', /ENOENT/],
      ['tcp://127.0.0.1:1', /ECONNREFUSED/],
    ];
    for (const [dockerHost, cause] of unreachable) {
      it(`is a RuntimeUnavailableError naming ${dockerHost} and the cause`, async () => {
        const offline = new DockerExecutor({ dockerHost });
        const expected = (error: unknown): boolean => {
          assert.ok(error instanceof RuntimeUnavailableError);
          assert.equal(error.retryable, true);
          assert.ok(error.message.startsWith(`docker engine at ${dockerHost} is unreachable (`), error.message);
          assert.match(error.message, cause);
          return true;
        };
        await assert.rejects(offline.ping(), expected);
        await assert.rejects(offline.launch(request({})), expected);
        await assert.rejects(offline.observe(workloadName(randomUUID())), expected);
        await assert.rejects(offline.listOwned(), expected);
      });
    }

    it('is a RuntimeUnavailableError when the engine accepts a connection but never answers', async () => {
      const socketPath = path.join(os.tmpdir(), `${uniqueName('silent')}.sock`);
      const connections = new Set<net.Socket>();
      const silent = net.createServer((socket) => connections.add(socket));
      await new Promise<void>((resolve) => silent.listen(socketPath, resolve));
      try {
        const hung = new DockerExecutor({ dockerHost: `unix://${socketPath}`, requestTimeoutMs: 200 });
        await assert.rejects(hung.ping(), {
          name: 'RuntimeUnavailableError',
          message: `docker engine at unix://${socketPath} is unreachable (ping): no answer to ping within 200 ms`,
        });
      } finally {
        for (const socket of connections) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    it('keeps a watcher retrying with backoff, telling why, until aborted', async () => {
      const errors: Error[] = [];
      const offline = new DockerExecutor({
        dockerHost: 'unix:///tmp/nonexistent.sock',
        watchInitialBackoffMs: 5,
        watchMaxBackoffMs: 20,
        onWatchError: (error) => errors.push(error),
      });
      const controller = new AbortController();
      offline.watch(() => assert.fail('no event can come from an absent engine'), controller.signal);
      try {
        await waitFor('three failed connection attempts', () => errors.length >= 3);
      } finally {
        controller.abort();
      }
      assert.ok(errors.every((error) => error instanceof RuntimeUnavailableError && /ENOENT/.test(error.message)));
    });

    it('refuses a docker host it cannot read with ConfigError', () => {
      assert.throws(() => new DockerExecutor({ dockerHost: 'ftp://example' }), {
        name: 'ConfigError',
        message: 'docker host "ftp://example" must be unix:///path/to/docker.sock, tcp://host:port or an absolute socket path',
      });
      assert.throws(() => new DockerExecutor({ requestTimeoutMs: 0 }), ConfigError);
    });
  });
});
