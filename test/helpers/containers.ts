import Docker from 'dockerode';
import { LABEL_NETWORK_SANDBOX, joinedContainer } from '../../src/executors/docker/network-sandboxes';
import { LABEL_APP } from '../../src/executors/executor';
import { waitFor } from './wait';

/**
 * Removes the containers of these Apps, whatever state they are in, and waits
 * until they are gone: what a test that starts runs leaves behind. A removal
 * berth had already begun (Docker answers 409) is waited out, not repeated.
 */
export async function removeContainersOf(apps: Iterable<string>): Promise<void> {
  const docker = new Docker();
  const names = new Set(apps);
  if (names.size === 0) return;
  const ours = async () => (await docker.listContainers({ all: true, filters: { label: [LABEL_APP] } })).filter((c) => names.has(c.Labels[LABEL_APP]));
  await Promise.all(
    (await ours()).map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
  await waitFor(`the containers of ${[...names].join(', ')} to be gone`, async () => (await ours()).length === 0, { timeoutMs: 60_000 });
}

/**
 * The network a container is on: its NetworkMode, or for one that joined a
 * network sandbox (src/executors/docker/network-sandboxes.ts), the sandbox's,
 * which must then be a berth sandbox.
 */
export async function effectiveNetwork(info: Docker.ContainerInspectInfo): Promise<string> {
  const joined = joinedContainer(info.HostConfig.NetworkMode);
  if (!joined) return info.HostConfig.NetworkMode ?? '';
  const sandbox = await new Docker().getContainer(joined).inspect();
  if (sandbox.Config.Labels?.[LABEL_NETWORK_SANDBOX] === undefined) throw new Error(`${info.Name} joined ${joined}, which is not a berth network sandbox`);
  return sandbox.HostConfig.NetworkMode ?? '';
}
