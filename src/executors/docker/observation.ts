/**
 * What `docker inspect` says about a container, read as berth's Observation.
 */

import type { ContainerInspectInfo } from 'dockerode';
import { WaitingReason, type Observation } from '../executor';

/** Docker's spelling of "never": the zero time.Time. */
const isSet = (timestamp: string | undefined): timestamp is string => !!timestamp && !timestamp.startsWith('0001-01-01');

/** Docker's RFC 3339 nanosecond timestamps as ISO 8601 strings (millisecond precision). */
const iso = (timestamp: string): string => new Date(timestamp).toISOString();

/** Maps an inspected container's state to an Observation. */
export function observationOf(info: ContainerInspectInfo): Observation {
  const state = info.State;
  const message = state.Error ? state.Error : undefined;
  switch (state.Status) {
    case 'created':
      // A container that failed to start stays "created" with the reason in
      // State.Error (e.g. the command does not exist): that attempt has ended.
      // It is an exit (127, as a shell says "not found"), not a terminal
      // LaunchFailed wait, because the engine gives the same answer for
      // passing failures (a cgroup it could not set up), which retries may outlast.
      if (message) {
        return {
          state: 'exited',
          exitCode: state.ExitCode || 128,
          oomKilled: state.OOMKilled,
          finishedAt: iso(isSet(state.FinishedAt) ? state.FinishedAt : info.Created),
          message,
        };
      }
      // Not terminal: Docker has no scheduler of its own, so a created container waits only on berth's start call.
      return { state: 'waiting', reason: WaitingReason.Creating, terminal: false, message: 'container created, not started yet' };
    case 'running':
    case 'paused':
    case 'restarting':
      return { state: 'running', startedAt: iso(isSet(state.StartedAt) ? state.StartedAt : info.Created) };
    default:
      // exited, dead, removing: the process is gone and its result is final.
      return {
        state: 'exited',
        exitCode: state.ExitCode,
        oomKilled: state.OOMKilled,
        ...(isSet(state.StartedAt) ? { startedAt: iso(state.StartedAt) } : {}),
        finishedAt: iso(isSet(state.FinishedAt) ? state.FinishedAt : info.Created),
        ...(message ? { message } : {}),
      };
  }
}
