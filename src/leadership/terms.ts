/**
 * The parts only the leader runs (the controller, the folder source), started
 * for each term this replica leads and stopped — aborted and drained — as the
 * term ends. Parts are one-shot, so every term gets new ones. Every replica
 * keeps serving the API meanwhile.
 */
import type { Gauge } from 'prom-client';
import type { ReadinessCheck } from '../server-part';
import type { Logger } from '../log';
import type { ServerPart } from '../server-part';
import type { LeaderRecord, LeadershipRecords } from '../store/leadership';
import { CONTROLLER_LOCK, type Leadership } from './leadership';

/** Who leads, as `/readyz` tells it. */
export interface LeaderReport {
  /** This replica's identity. */
  identity: string;
  leading: boolean;
  /** The leader as the store records it: its identity, epoch and since when. */
  leader?: { identity: string; epoch: number; since: string };
  /** Why this replica does not lead, when it does not. */
  reason?: string;
}

export interface LeaderTermsOptions {
  leadership: Leadership;
  /** The parts of one term, new each time. */
  makeParts: (term: LeaderRecord) => ServerPart[];
  records: LeadershipRecords;
  /** 1 while this replica leads, 0 otherwise. */
  gauge: Gauge;
  logger: Logger;
}

interface RunningTerm {
  record: LeaderRecord;
  parts: ServerPart[];
  stop: AbortController;
  running: Promise<void>;
}

export class LeaderTerms {
  private term?: RunningTerm;
  /** Term changes happen one at a time: a term is drained before the next starts. */
  private transitions: Promise<void> = Promise.resolve();

  constructor(private readonly options: LeaderTermsOptions) {
    options.gauge.set(0);
  }

  /**
   * The server part: campaigns until `signal` aborts, running the leader's
   * parts for each term won. On shutdown the term's parts are drained first
   * and the lock let go after, so no successor starts while they still work.
   */
  readonly part: ServerPart = {
    name: 'leadership',
    start: async (signal) => {
      const { leadership, logger } = this.options;
      const election = new AbortController();
      const onChange = (): void => this.transition(signal);
      leadership.on('change', onChange);
      const electing = leadership.start(election.signal).catch((err: unknown) => logger.error({ err }, 'leader election stopped with an error'));
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      this.transition(signal);
      await this.transitions;
      election.abort();
      await electing;
      leadership.off('change', onChange);
    },
  };

  /** A check that asks the current term's part of that name; a follower is ready (it serves the API). */
  readiness(name: string): ReadinessCheck {
    return {
      name,
      check: async () => {
        const check = this.term?.parts.find((part) => part.name === name)?.readiness;
        if (check) return check.check();
        return { ready: true, reason: 'this replica follows; the leader runs it' };
      },
    };
  }

  async report(): Promise<LeaderReport> {
    const state = this.options.leadership.state();
    const recorded = await this.options.records.get(CONTROLLER_LOCK);
    return {
      identity: this.options.leadership.identity,
      leading: state.leading,
      ...(recorded ? { leader: { identity: recorded.holder, epoch: recorded.epoch, since: recorded.acquiredAt } } : {}),
      ...(state.leading ? {} : { reason: state.reason }),
    };
  }

  /** Level-based: compares what the election says now with the term running, whatever event woke it. */
  private transition(shutdown: AbortSignal): void {
    this.transitions = this.transitions.then(async () => {
      const state = this.options.leadership.state();
      const wanted = state.leading && !shutdown.aborted ? state.term : undefined;
      if (this.term && this.term.record.epoch !== wanted?.epoch) await this.stopTerm();
      if (wanted && !this.term) this.startTerm(wanted);
    });
  }

  private startTerm(record: LeaderRecord): void {
    const { logger } = this.options;
    const parts = this.options.makeParts(record);
    const stop = new AbortController();
    const running = Promise.all(
      parts.map(async (part) => {
        try {
          await part.start(stop.signal);
        } catch (err) {
          logger.error({ err, part: part.name }, `${part.name} stopped with an error`);
        }
      }),
    ).then(() => undefined);
    this.term = { record, parts, stop, running };
    this.options.gauge.set(1);
    logger.info({ epoch: record.epoch }, 'leading: started the controller and the folder source');
  }

  private async stopTerm(): Promise<void> {
    const term = this.term!;
    this.options.gauge.set(0);
    term.stop.abort();
    await term.running;
    this.term = undefined;
    this.options.logger.info({ epoch: term.record.epoch }, 'no longer leading: the controller and the folder source have stopped');
  }
}
