/**
 * Building the Kubernetes executor without loading client-node until one is
 * built: @kubernetes/client-node costs about 0.7 s and 75 MB of resident
 * memory to load (measured here), which a server that drives only Docker
 * should not pay. Import this module, not ./index, where the runtime is
 * chosen at start.
 */

import type { KubernetesExecutor } from './kubernetes-executor';
import type { KubernetesExecutorOptions } from './options';

export type { KubernetesExecutor, KubernetesExecutorOptions };

/**
 * A KubernetesExecutor for `options`.
 *
 * @throws ConfigError when the configuration cannot be read or an option is out of range.
 */
export function createKubernetesExecutor(options: KubernetesExecutorOptions = {}): KubernetesExecutor {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deferred on purpose, see above
  const { KubernetesExecutor: Executor } = require('./kubernetes-executor') as typeof import('./kubernetes-executor');
  return new Executor(options);
}
