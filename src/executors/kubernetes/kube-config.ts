/**
 * Which cluster, which credentials and which namespace: read the way kubectl
 * and a pod's own service account would, in the order berth documents
 * (`--kubeconfig`, else `KUBECONFIG`, else in-cluster, else ~/.kube/config),
 * and refused with a ConfigError naming what is wrong.
 */

import { KubeConfig } from '@kubernetes/client-node';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../errors';

/** Where a pod finds its own namespace (mounted with its service account token). */
export const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A cluster berth can talk to. */
export interface ClusterTarget {
  kubeConfig: KubeConfig;
  /** The API server's URL, named in every RuntimeUnavailableError. */
  server: string;
  namespace: string;
  /** Where the configuration came from, for messages: a file path or `in-cluster service account`. */
  source: string;
}

/**
 * Loads the cluster configuration and settles the namespace.
 *
 * @param kubeconfig a kubeconfig file; absent: `KUBECONFIG`, else the pod's
 *   service account when `KUBERNETES_SERVICE_HOST` is set, else ~/.kube/config.
 * @param namespace absent: in cluster the pod's own, else the current
 *   context's, else `default`.
 * @throws ConfigError when no configuration can be read, it has no current
 *   cluster, or the namespace is not a DNS-1123 label.
 */
export function loadClusterTarget(kubeconfig: string | undefined, namespace: string | undefined, env: NodeJS.ProcessEnv = process.env): ClusterTarget {
  const kubeConfig = new KubeConfig();
  let source: string;
  let inCluster = false;
  try {
    if (kubeconfig !== undefined) {
      if (!kubeconfig.trim()) throw new ConfigError('kubeconfig: must be a file path, got an empty string');
      source = kubeconfig;
      kubeConfig.loadFromFile(kubeconfig);
    } else if (env.KUBECONFIG) {
      source = `KUBECONFIG=${env.KUBECONFIG}`;
      // client-node reads KUBECONFIG's list of files and merges them as kubectl does.
      kubeConfig.loadFromDefault();
    } else if (env.KUBERNETES_SERVICE_HOST) {
      source = 'in-cluster service account';
      inCluster = true;
      kubeConfig.loadFromCluster();
    } else {
      source = path.join(os.homedir(), '.kube', 'config');
      if (!fs.existsSync(source)) {
        throw new ConfigError(`no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, run berth in a pod, or create ${source}`);
      }
      kubeConfig.loadFromFile(source);
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`cannot read the Kubernetes configuration (${kubeconfig ?? env.KUBECONFIG ?? 'default'}): ${(error as Error).message}`);
  }
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster?.server) throw new ConfigError(`the Kubernetes configuration from ${source} has no current context with a cluster server`);

  const chosen = namespace ?? (inCluster ? podNamespace() : undefined) ?? contextNamespace(kubeConfig) ?? 'default';
  if (!DNS_1123_LABEL.test(chosen)) {
    throw new ConfigError(`namespace: must be a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters), got "${chosen}"`);
  }
  return { kubeConfig, server: cluster.server, namespace: chosen, source };
}

/** The pod's own namespace, when berth runs in one. */
function podNamespace(): string | undefined {
  try {
    return fs.readFileSync(IN_CLUSTER_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function contextNamespace(kubeConfig: KubeConfig): string | undefined {
  const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
  return context?.namespace || undefined;
}
