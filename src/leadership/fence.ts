/**
 * The launch fence of one term: launches are recorded under the epoch this
 * replica took over with, and refused once another replica has taken over
 * (src/store/leadership.ts holds the transaction).
 */
import type { LaunchFence } from '../controller/reconciler';
import type { Logger } from '../log';
import type { LeadershipRecords, Term } from '../store/leadership';

export function termFence(records: LeadershipRecords, term: Term, logger: Logger): LaunchFence {
  return {
    async recordLaunch(launch) {
      const held = await records.recordLaunch(term, launch);
      if (!held) logger.warn({ ...launch, epoch: term.epoch }, 'launch refused: another replica leads now (a newer epoch); this replica stops launching');
      return held;
    },
  };
}
