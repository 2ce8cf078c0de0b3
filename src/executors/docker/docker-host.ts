/**
 * Where the Docker engine listens, read the way the docker CLI reads
 * `DOCKER_HOST`: `unix:///path`, `tcp://host:port`, `http://host:port`, or a
 * bare socket path.
 */

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** The connection half of dockerode's options. */
export interface DockerEndpoint {
  socketPath?: string;
  host?: string;
  port?: number;
  protocol?: 'http';
}

/**
 * Turns a docker host string into dockerode connection options. Every field
 * is set (undefined where unused) because dockerode merges them over what it
 * reads from `DOCKER_HOST` itself, and a stale `host` from the environment
 * would otherwise win over an explicit socket path.
 *
 * @throws Error naming the accepted forms when `dockerHost` is none of them.
 */
export function parseDockerHost(dockerHost: string): DockerEndpoint {
  const value = dockerHost.trim();
  if (value.startsWith('unix://')) {
    return { socketPath: value.slice('unix://'.length) || DEFAULT_DOCKER_SOCKET, host: undefined, port: undefined, protocol: undefined };
  }
  if (value.startsWith('/')) {
    return { socketPath: value, host: undefined, port: undefined, protocol: undefined };
  }
  const match = /^(?:tcp|http):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(value);
  if (match) {
    // TLS (2376, DOCKER_CERT_PATH) is not wired up: the port alone must not switch protocols behind our back.
    return { socketPath: undefined, host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2] ?? 2375), protocol: 'http' };
  }
  throw new Error(`docker host "${dockerHost}" must be unix:///path/to/docker.sock, tcp://host:port or an absolute socket path`);
}

/** The docker host berth uses when none is configured: `DOCKER_HOST`, else the local socket. */
export const defaultDockerHost = (): string => process.env.DOCKER_HOST || `unix://${DEFAULT_DOCKER_SOCKET}`;
