/**
 * Which executor serves a run: the one place that decides. A run stays on the
 * runtime it was launched on (`status.runtime`), even if its App or the
 * server's default changed since; before its launch, its template's runtime
 * or the server's default picks.
 */
import type { Run, RuntimeName } from '../model/types';
import type { Executor } from './executor';

/** The part of a run that names its runtime. */
type RunRuntime = { spec: Pick<Run['spec'], 'template'>; status: Pick<Run['status'], 'runtime'> };

/** The executors one server drives, by runtime. */
export class Runtimes {
  private readonly byName = new Map<RuntimeName, Executor>();

  /** @throws RangeError when two executors serve one runtime. */
  constructor(
    executors: Iterable<Executor>,
    /** The runtime of Apps that name none. */
    readonly defaultRuntime: RuntimeName,
  ) {
    for (const executor of executors) {
      if (this.byName.has(executor.runtime)) throw new RangeError(`two executors for the ${executor.runtime} runtime`);
      this.byName.set(executor.runtime, executor);
    }
  }

  /** The runtime a run is (or will be) on. */
  runtimeOf(run: RunRuntime): RuntimeName {
    return run.status.runtime ?? run.spec.template.runtime ?? this.defaultRuntime;
  }

  /** The executor a run's workloads live on, or undefined when this server drives no such runtime. */
  executorFor(run: RunRuntime): Executor | undefined {
    return this.byName.get(this.runtimeOf(run));
  }

  get(runtime: RuntimeName): Executor | undefined {
    return this.byName.get(runtime);
  }

  /** Closes every executor; see Executor.close. */
  async close(): Promise<void> {
    await Promise.all([...this.byName.values()].map((executor) => executor.close?.()));
  }

  get size(): number {
    return this.byName.size;
  }

  [Symbol.iterator](): IterableIterator<Executor> {
    return this.byName.values();
  }
}
