/** The Docker executor: berth's workloads as containers on a Docker engine. */
export { DockerExecutor, type DockerExecutorOptions } from './docker-executor';
export { parseDockerHost, defaultDockerHost } from './docker-host';
