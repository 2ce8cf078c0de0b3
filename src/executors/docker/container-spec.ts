/**
 * The Docker container a run's attempt becomes: the App template mapped to
 * the engine's create options, with berth's labels and nothing that reaches
 * outside the container (no privileges, host mounts or published ports), and
 * contained as the server's policy says (src/model/containment.ts): every
 * capability dropped but the App's, no new privileges, a pids limit, default
 * limits, bounded logs, and the App's network.
 */

import type { ContainerCreateOptions } from 'dockerode';
import { DEFAULT_CONTAINMENT, dockerNetwork, effectiveResources, type ContainmentPolicy } from '../../model/containment';
import { parseCpuNanos, parseMemoryBytes } from '../../model/quantity';
import { LABEL_APP, LABEL_ATTEMPT, LABEL_MANAGED_BY, LABEL_RUN, LABEL_STORE, launchResources, MANAGED_BY, type LaunchRequest } from '../executor';

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
 * Create options for a run's container; with `sandbox`, the container joins
 * that container's network namespace instead of making its own (network-sandboxes.ts).
 *
 * @throws Error naming the rule when `resources` holds a quantity that cannot be read.
 */
export function containerCreateOptions(request: LaunchRequest, policy: ContainmentPolicy = DEFAULT_CONTAINMENT, sandbox?: string): ContainerCreateOptions {
  const { template } = request;
  const { resources } = effectiveResources(launchResources(request), policy);
  const memory = resources.memory ? parseMemoryBytes(resources.memory) : undefined;
  const nanoCpus = resources.cpu ? parseCpuNanos(resources.cpu) : undefined;
  return {
    name: request.name,
    Image: template.image,
    // An empty command means the image's own CMD, as `docker run image` does.
    Cmd: template.command.length > 0 ? template.command : undefined,
    Env: Object.entries(template.env).map(([key, value]) => `${key}=${value}`),
    Labels: workloadLabels(request),
    ...(template.user !== undefined ? { User: template.user } : {}),
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
      // Docker's default set lets root in the container chown, kill and bind anything it sees; a batch job rarely needs any of it.
      CapDrop: ['ALL'],
      CapAdd: [...(template.capabilities?.add ?? [])],
      // A setuid binary in the image cannot take back what was dropped.
      SecurityOpt: policy.allowPrivilegeEscalation ? [] : ['no-new-privileges'],
      // A fork bomb stops at the limit instead of at the host's.
      ...(policy.pidsLimit > 0 ? { PidsLimit: policy.pidsLimit } : {}),
      NetworkMode: sandbox ? `container:${sandbox}` : dockerNetwork(template, policy),
      // The engine keeps a container's output on the host's disk until it is removed; rotation bounds it.
      LogConfig: { Type: 'json-file', Config: { 'max-size': String(policy.logMaxSizeBytes), 'max-file': String(policy.logMaxFiles) } },
      ...(memory !== undefined
        ? // Swap equal to memory means no swap at all: the OOM killer ends a run over its limit instead of it crawling on swap.
          { Memory: memory, MemorySwap: memory }
        : {}),
      ...(nanoCpus !== undefined ? { NanoCpus: nanoCpus } : {}),
    },
  };
}
