/**
 * The Docker container a run's attempt becomes: the App template mapped to
 * the engine's create options, with berth's labels and nothing that reaches
 * outside the container (no privileges, host mounts or published ports).
 */

import type { ContainerCreateOptions } from 'dockerode';
import { parseCpuNanos, parseMemoryBytes } from '../../model/quantity';
import { LABEL_APP, LABEL_ATTEMPT, LABEL_MANAGED_BY, LABEL_RUN, LABEL_STORE, MANAGED_BY, type LaunchRequest } from '../executor';

/** Labels that tie a container to its run, App and attempt. */
export function workloadLabels(request: Pick<LaunchRequest, 'runUid' | 'appName' | 'attempt' | 'storeId'>): Record<string, string> {
  return {
    [LABEL_RUN]: request.runUid,
    [LABEL_APP]: request.appName,
    [LABEL_ATTEMPT]: String(request.attempt),
    [LABEL_MANAGED_BY]: MANAGED_BY,
    ...(request.storeId ? { [LABEL_STORE]: request.storeId } : {}),
  };
}

/**
 * Create options for a run's container.
 *
 * @throws Error naming the rule when `resources` holds a quantity that cannot be read.
 */
export function containerCreateOptions(request: LaunchRequest): ContainerCreateOptions {
  const { template } = request;
  const memory = template.resources.memory ? parseMemoryBytes(template.resources.memory) : undefined;
  const nanoCpus = template.resources.cpu ? parseCpuNanos(template.resources.cpu) : undefined;
  return {
    name: request.name,
    Image: template.image,
    // An empty command means the image's own CMD, as `docker run image` does.
    Cmd: template.command.length > 0 ? template.command : undefined,
    Env: Object.entries(template.env).map(([key, value]) => `${key}=${value}`),
    Labels: workloadLabels(request),
    // No TTY, so the log stream stays multiplexed and stdout and stderr can be told apart.
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    HostConfig: {
      Privileged: false,
      Binds: [],
      Mounts: [],
      PortBindings: {},
      PublishAllPorts: false,
      // berth decides about retries and removal itself; the engine must not restart or remove behind its back.
      RestartPolicy: { Name: 'no' },
      AutoRemove: false,
      ...(memory !== undefined
        ? // Swap equal to memory means no swap at all: the OOM killer ends a run over its limit instead of it crawling on swap.
          { Memory: memory, MemorySwap: memory }
        : {}),
      ...(nanoCpus !== undefined ? { NanoCpus: nanoCpus } : {}),
    },
  };
}
