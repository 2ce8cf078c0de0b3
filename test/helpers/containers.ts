import Docker from 'dockerode';
import { LABEL_APP } from '../../src/executors/executor';

/** Removes the containers of these Apps, whatever state they are in: what a test that starts runs leaves behind. */
export async function removeContainersOf(apps: Iterable<string>): Promise<void> {
  const docker = new Docker();
  const names = new Set(apps);
  if (names.size === 0) return;
  const all = await docker.listContainers({ all: true, filters: { label: [LABEL_APP] } });
  const ours = all.filter((c) => names.has(c.Labels[LABEL_APP]));
  await Promise.all(ours.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}
