/**
 * How tightly berth contains the workloads it starts. Every container gets
 * no new privileges, no capabilities but the ones its App adds back, a pids
 * limit, bounded logs, and memory and CPU limits even when its App sets
 * none; what an App may ask for (capabilities, registries, networks) is the
 * operator's to allow. This module decides it all, once for admission at the
 * edge (the API, the apps folder) and again at each launch, since the
 * server's flags may have changed after an App was accepted.
 */

import { FieldProblem, RuntimeRefusedError, ValidationError } from '../errors';
import { BASELINE_CAPABILITIES } from './capabilities';
import { isImageAllowed, qualifiedRepository } from './image-registry';
import { NetworkName, RuntimeName, type AppSpec, type Resources } from './types';
import type { Locator } from './validate';

/** The server's containment settings, from `berth serve`'s flags (see README, "Containment"). */
export interface ContainmentPolicy {
  /** Capabilities an App may add back (`spec.capabilities.add`); every other stays dropped. */
  allowedCapabilities: readonly string[];
  /** Registries, or registry/path prefixes, images may come from; empty: any. */
  allowedRegistries: readonly string[];
  /** Processes and threads one container may have; 0: the engine's default (usually none). Docker only. */
  pidsLimit: number;
  /** Limits for an App whose `spec.resources` sets none (each of cpu and memory on its own). */
  defaultResources: Resources;
  /** What `spec.network: default` (or none given) means on Docker: `bridge`, `none` or a network's name. */
  defaultNetwork: string;
  /** The json-file log driver's rotation: the size of one file, in bytes, and how many are kept. Docker only. */
  logMaxSizeBytes: number;
  logMaxFiles: number;
  /** Let processes gain privileges (setuid binaries, file capabilities); off sets no-new-privileges. */
  allowPrivilegeEscalation: boolean;
}

/** berth's defaults, each relaxed by its flag. */
export const DEFAULT_CONTAINMENT: ContainmentPolicy = Object.freeze({
  allowedCapabilities: BASELINE_CAPABILITIES,
  allowedRegistries: [],
  pidsLimit: 1024,
  defaultResources: { cpu: '1', memory: '1Gi' },
  defaultNetwork: 'bridge',
  logMaxSizeBytes: 10 * 1024 * 1024,
  logMaxFiles: 3,
  allowPrivilegeEscalation: false,
});

/**
 * What `policy` refuses in `spec` on `runtime`, as field problems: an image
 * from a registry not allowed, a capability not allowed, a network a pod
 * cannot have. Empty when the App may run.
 */
export function containmentProblems(spec: AppSpec, policy: ContainmentPolicy, runtime: RuntimeName): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (!isImageAllowed(spec.image, policy.allowedRegistries)) {
    const { registry, repository } = qualifiedRepository(spec.image);
    problems.push({
      field: 'spec.image',
      reason: `"${spec.image}" (${registry}/${repository}) is not from a registry this server allows: ${policy.allowedRegistries.join(', ')} (--allowed-registries)`,
    });
  }
  const refused = (spec.capabilities?.add ?? []).filter((name) => !policy.allowedCapabilities.includes(name));
  if (refused.length) {
    const allowed = policy.allowedCapabilities.length ? policy.allowedCapabilities.join(', ') : 'none';
    problems.push({
      field: 'spec.capabilities.add',
      reason: `${refused.join(', ')} ${refused.length === 1 ? 'is' : 'are'} not allowed on this server (allowed: ${allowed}); an operator can allow more with --allowed-capabilities default,${refused.join(',')}`,
    });
  }
  if (runtime === RuntimeName.kubernetes && spec.network !== undefined && spec.network !== NetworkName.default) {
    problems.push({
      field: 'spec.network',
      reason: `"${spec.network}" cannot be set per pod on the kubernetes runtime: leave it out (the pod network) and isolate pods with a NetworkPolicy`,
    });
  }
  return problems;
}

/** What admitting an App at the edge needs to know about the server. */
export interface Admission {
  containment: ContainmentPolicy;
  /** The runtime of Apps that name none. */
  defaultRuntime: RuntimeName;
}

/**
 * Admits an App declared through the API or the apps folder: its runtime is
 * its own or the server's default.
 *
 * @throws ValidationError naming each refused field (with its line and column when `at` can find it).
 */
export function admitApp(spec: AppSpec, admission: Admission, at?: Locator): void {
  const problems = containmentProblems(spec, admission.containment, spec.runtime ?? admission.defaultRuntime);
  if (problems.length === 0) return;
  if (at) for (const problem of problems) Object.assign(problem, at(problem.field.split('.')) ?? {});
  throw ValidationError.fromProblems(problems, 'App');
}

/**
 * Checks a launch against the policy again: the server's flags may have
 * changed since the App was admitted.
 *
 * @throws RuntimeRefusedError naming the workload and each refused field.
 */
export function assertLaunchAllowed(workload: string, spec: AppSpec, policy: ContainmentPolicy, runtime: RuntimeName): void {
  const problems = containmentProblems(spec, policy, runtime);
  if (problems.length) throw new RuntimeRefusedError(`cannot launch ${workload}: ${problems.map((p) => `${p.field}: ${p.reason}`).join('; ')}`);
}

/** The limits a workload gets: its App's, and the server's default for each the App leaves out. */
export function effectiveResources(resources: Resources, policy: ContainmentPolicy): { resources: Resources; defaulted: (keyof Resources)[] } {
  const effective: Resources = {};
  const defaulted: (keyof Resources)[] = [];
  for (const key of ['cpu', 'memory'] as const) {
    const value = resources[key] ?? policy.defaultResources[key];
    if (value === undefined) continue;
    effective[key] = value;
    if (resources[key] === undefined) defaulted.push(key);
  }
  return { resources: effective, defaulted };
}

/** The Docker network an App's container joins: `none`, the engine's `bridge`, or a named network. */
export function dockerNetwork(spec: AppSpec, policy: ContainmentPolicy): string {
  const network = spec.network ?? NetworkName.default;
  return network === NetworkName.default ? policy.defaultNetwork : network;
}

/** Networks every Docker engine has, which need no check that they exist. */
export const BUILT_IN_NETWORKS: readonly string[] = ['none', 'bridge'];

/**
 * Reads `--default-network`: `bridge` (the engine's default bridge), `none`,
 * or a network's name; never `host`.
 *
 * @throws Error naming the rule.
 */
export function parseDefaultNetwork(value: string): string {
  const network = value.trim();
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(network) || network === NetworkName.default) {
    throw new Error('must be bridge, none, or the name of a Docker network.');
  }
  if (network === 'host') throw new Error("must not be host: a container on the host's network reaches everything the host does.");
  return network;
}
