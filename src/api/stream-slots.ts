import { ServerBusyError } from '../errors';

/** What `Retry-After` suggests to a client refused a stream: streams end as clients leave. */
const RETRY_AFTER_SECONDS = 5;

/**
 * A bound on long-lived answers of one kind (event streams, followed logs).
 * Each holds a connection, a listener on every store change or a stream from
 * the runtime for as long as the client stays: without a bound, clients that
 * never leave use the server up.
 */
export class StreamSlots {
  private open = 0;

  constructor(
    /** What the streams are, for the refusal: `event streams`. */
    private readonly what: string,
    readonly max: number,
    /** The flag that sets `max`, so the refusal says what to change. */
    private readonly flag: string,
  ) {}

  /**
   * Takes a slot, or refuses with 503 and `Retry-After` when all are taken.
   * The returned function gives the slot back; calling it again does nothing.
   */
  take(): () => void {
    if (this.open >= this.max) {
      throw new ServerBusyError(
        `this server has ${this.open} ${this.what} open, the most it allows (${this.flag} ${this.max}); try again later`,
        RETRY_AFTER_SECONDS,
      );
    }
    this.open++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open--;
    };
  }

  get size(): number {
    return this.open;
  }
}
