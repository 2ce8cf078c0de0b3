/**
 * What only the Docker executor does: how it maps App templates to
 * containers, pulls from registries, reads the engine's errors, event stream
 * and log frames. What every executor does is the contract, run here first.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ConfigError, ImagePullError, RuntimeApiError, RuntimeRefusedError, RuntimeUnavailableError } from '../../src/errors';
import { DockerExecutor } from '../../src/executors/docker';
import { containerCreateOptions } from '../../src/executors/docker/container-spec';
import { engineAnswer } from '../../src/executors/docker/docker-errors';
import { watchEngineEvents } from '../../src/executors/docker/event-watch';
import { LogFrameDecoder } from '../../src/executors/docker/log-frames';
import {
  LABEL_APP,
  LABEL_ATTEMPT,
  LABEL_MANAGED_BY,
  LABEL_RUN,
  LABEL_STORE,
  workloadName,
  type LaunchRequest,
  type Observation,
  type WorkloadEvent,
} from '../../src/executors/executor';
import type { AppSpec } from '../../src/model/types';
import { executorContract, readText } from '../contract/executor.contract';
import { REGISTRY_IMAGE, TEST_IMAGE, appSpec, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

/** A socket no engine listens on. */
const NO_ENGINE = 'unix:///tmp/berth-test-no-engine.sock';

executorContract('DockerExecutor', () => new DockerExecutor(), {
  image: TEST_IMAGE,
  // Built by .ci/provision from the same rootfs, with a CMD of its own.
  defaultCommandImage: { image: 'berth-test/busybox-cmd:latest', output: 'hello from the image\n' },
  missingImage: '127.0.0.1:5000/berth-test/busybox:no-such-tag',
  makeUnreachable: () => new DockerExecutor({ dockerHost: NO_ENGINE }),
  unreachableAddress: NO_ENGINE,
});

describe('DockerExecutor on a real engine', function () {
  this.timeout(30_000);

  const docker = new Docker();
  const executor = new DockerExecutor();
  let appName: string;
  let storeId: string;

  beforeEach(() => {
    appName = uniqueName('docker');
    // A store of its own, so that controllers sharing the engine leave these containers alone.
    storeId = uniqueName('store');
  });

  afterEach(async () => {
    const leftovers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${appName}`] } });
    await Promise.all(leftovers.map((c) => executor.remove(c.Names[0].replace(/^\//, ''))));
  });

  const request = (spec: Partial<AppSpec>): LaunchRequest => {
    const runUid = randomUUID();
    return { name: workloadName(runUid, 1), runUid, runName: uniqueName('run'), appName, attempt: 1, storeId, template: appSpec(spec) };
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

  describe('containers', () => {
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
        [LABEL_STORE]: storeId,
      });
    });

    it('observes a container created but not started as waiting, and starts it on the next launch', async () => {
      const launch = request({ command: ['sh', '-c', 'echo adopted'] });
      await docker.createContainer(containerCreateOptions(launch));
      assert.deepEqual(await executor.observe(launch.name), {
        state: 'waiting',
        reason: 'Creating',
        terminal: false,
        message: 'container created, not started yet',
      });
      await executor.launch(launch);
      assert.equal((await waitForExit(launch.name)).exitCode, 0);
      assert.equal(await readText(await executor.logs(launch.name)), 'adopted\n');
    });

    it('reports a command the engine cannot start as exit code 127 with its words', async () => {
      const launch = request({ command: ['/no/such/binary'] });
      await executor.launch(launch);
      const exited = await waitForExit(launch.name);
      assert.equal(exited.exitCode, 127);
      assert.match(exited.message ?? '', /no such file or directory/);
    });
  });

  describe("the engine's refusals", () => {
    it('refuses a memory limit below what the engine allows with RuntimeRefusedError in its words', async () => {
      const launch = request({ resources: { memory: '1Mi' } });
      await assert.rejects(executor.launch(launch), (error: unknown) => {
        assert.ok(error instanceof RuntimeRefusedError, String(error));
        assert.equal(error.retryable, false);
        assert.equal(error.message, `docker engine refused creating container ${launch.name}: Minimum memory limit allowed is 6MB`);
        return true;
      });
    });

    it('refuses a quantity it cannot read with RuntimeRefusedError, sending nothing to the engine', async () => {
      const launch = request({ resources: { cpu: 'lots' } });
      await assert.rejects(executor.launch(launch), (error: unknown) => {
        assert.ok(error instanceof RuntimeRefusedError, String(error));
        assert.match(error.message, new RegExp(`^cannot create container ${launch.name}: cpu quantity "lots" must be`));
        return true;
      });
      assert.deepEqual(await executor.observe(launch.name), { state: 'absent' });
    });

    /** An error as dockerode raises it for an engine answer. */
    const answer = (statusCode: number, message: string): Error =>
      Object.assign(new Error(`(HTTP code ${statusCode}) unexpected - ${message} `), { statusCode, json: { message } });

    it('reads a 4xx answer as RuntimeRefusedError and a 5xx or unknown one as RuntimeApiError, saying what berth was doing', () => {
      const refused = engineAnswer('creating container c', answer(409, 'Conflict. The container name "/c" is already in use'));
      assert.ok(refused instanceof RuntimeRefusedError);
      assert.equal(refused.message, 'docker engine refused creating container c: Conflict. The container name "/c" is already in use');
      const failed = engineAnswer('inspecting container c', answer(500, 'devmapper: Unknown device'));
      assert.ok(failed instanceof RuntimeApiError);
      assert.equal(failed.retryable, true);
      assert.equal(failed.message, 'docker engine failed inspecting container c (HTTP 500): devmapper: Unknown device');
      const unreadable = engineAnswer('listing berth containers', new SyntaxError('Unexpected token < in JSON'));
      assert.ok(unreadable instanceof RuntimeApiError);
      assert.equal(unreadable.message, 'docker engine failed listing berth containers: Unexpected token < in JSON');
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

    it("fails a pull of a missing tag with the registry's message, leaving no container", async () => {
      const image = `127.0.0.1:5000/berth-test/busybox:${uniqueName('missing')}`;
      const launch = request({ image });
      await assert.rejects(executor.launch(launch), (error: unknown) => {
        assert.ok(error instanceof ImagePullError);
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
        assert.equal(error.message, `image "${image}" is not present on the docker engine at ${executor.dockerHost}, and imagePullPolicy is Never`);
        return true;
      });
      assert.deepEqual(await executor.observe(launch.name), { state: 'absent' });
    });
  });

  describe('events', () => {
    it('maps engine actions to workload actions, and reconnects asking for events since the last one seen', async () => {
      // A stand-in engine whose first event stream ends after its events, so the reconnect can be seen exactly.
      const queries: { since: string }[] = [];
      // Event times after the watch began, in whole multiples of 4 ms so the JSON number is exact.
      const sentNanos: number[] = [];
      const streams: PassThrough[] = [];
      const line = (event: object): string => `${JSON.stringify(event)}\n`;
      const engine = {
        getEvents: async (query: { since: string }) => {
          queries.push(query);
          const stream = new PassThrough();
          streams.push(stream);
          const runUid = `run-${queries.length}`;
          const Attributes = { [LABEL_RUN]: runUid, name: `berth-run-${runUid}-1` };
          sentNanos.push((Math.floor(Date.now() / 4) * 4 + 60_000) * 1e6);
          // `kill` only says a signal was sent: no workload action of its own.
          stream.write(line({ Type: 'container', Action: 'kill', Actor: { Attributes } }));
          stream.write(
            line({ Type: 'container', Action: queries.length === 1 ? 'die' : 'start', timeNano: sentNanos[sentNanos.length - 1], Actor: { Attributes } }),
          );
          if (queries.length === 1) stream.end();
          return stream;
        },
      } as unknown as Docker;
      const events: WorkloadEvent[] = [];
      const errors: Error[] = [];
      const controller = new AbortController();
      const watching = watchEngineEvents(
        engine,
        (event) => events.push(event),
        controller.signal,
        { initialBackoffMs: 1, maxBackoffMs: 1, onError: (error) => errors.push(error) },
        (error) => error as Error,
      );
      try {
        await waitFor('the event from the second connection', () => events.length === 2);
      } finally {
        controller.abort();
      }
      await watching;
      assert.deepEqual(events, [
        { runUid: 'run-1', name: 'berth-run-run-1-1', action: 'exited' },
        { runUid: 'run-2', name: 'berth-run-run-2-1', action: 'started' },
      ]);
      assert.match(queries[0].since, /^\d{10}\.\d{9}$/);
      const first = BigInt(sentNanos[0]);
      assert.equal(queries[1].since, `${first / 1_000_000_000n}.${String(first % 1_000_000_000n).padStart(9, '0')}`);
      assert.deepEqual(
        errors.map((error) => error.message),
        ['the engine closed the event stream'],
      );
      assert.equal(streams[1].destroyed, true, 'the open stream outlived the abort');
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
      [NO_ENGINE, /ENOENT/],
      ['tcp://127.0.0.1:1', /ECONNREFUSED/],
    ];
    for (const [dockerHost, cause] of unreachable) {
      it(`is a RuntimeUnavailableError naming ${dockerHost} and the cause`, async () => {
        const offline = new DockerExecutor({ dockerHost });
        const expected = (error: unknown): boolean => {
          assert.ok(error instanceof RuntimeUnavailableError);
          assert.ok(error.message.startsWith(`docker engine at ${dockerHost} is unreachable (`), error.message);
          assert.match(error.message, cause);
          return true;
        };
        await assert.rejects(offline.ping(), expected);
        await assert.rejects(offline.launch(request({})), expected);
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
        dockerHost: NO_ENGINE,
        watchInitialBackoffMs: 5,
        watchMaxBackoffMs: 20,
        onWatchError: (error) => errors.push(error),
      });
      const controller = new AbortController();
      const watching = offline.watch(() => assert.fail('no event can come from an absent engine'), controller.signal);
      try {
        await waitFor('three failed connection attempts', () => errors.length >= 3);
      } finally {
        controller.abort();
      }
      await watching;
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
