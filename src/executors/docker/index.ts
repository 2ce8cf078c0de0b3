/** The Docker executor: berth's workloads as containers on a Docker engine. */
export { DockerExecutor, type DockerExecutorOptions } from './docker-executor';
export { DockerApiError } from './docker-errors';
export { parseDockerHost, defaultDockerHost } from './docker-host';
