/**
 * What the Docker engine itself says happened, for tests and benchmarks that
 * must not take berth's word for it (how many containers a run ever had).
 */
import type Docker from 'dockerode';
import { LABEL_APP, LABEL_RUN } from '../../src/executors/executor';

/** Containers created per run (by `berth.dev/run`) of `app` between `since` (ms) and now, counted from the engine's events. */
export async function createsPerRun(docker: Docker, app: string, since: number): Promise<Map<string, number>> {
  const stream = (await docker.getEvents({
    since: Math.floor(since / 1000),
    until: Math.ceil(Date.now() / 1000) + 1,
    filters: { type: ['container'], event: ['create'], label: [`${LABEL_APP}=${app}`] },
  })) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  const counts = new Map<string, number>();
  for (const line of text.split('\n').filter(Boolean)) {
    const run = (JSON.parse(line) as { Actor: { Attributes: Record<string, string> } }).Actor.Attributes[LABEL_RUN];
    counts.set(run, (counts.get(run) ?? 0) + 1);
  }
  return counts;
}
