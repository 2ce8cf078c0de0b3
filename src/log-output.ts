/**
 * Where berth's log lines go: a stream (stdout) that is written
 * asynchronously and never holds more than a bound. A log collector that
 * stops reading must not stop berth: a synchronous write to a full pipe
 * blocks the event loop (signals and timers included) for as long as nobody
 * reads, and an unbounded buffer grows until the process runs out of memory.
 * So lines beyond the bound are dropped and counted, and the final flush at
 * shutdown waits only so long.
 */
import type { Writable } from 'node:stream';

/** @default bound of what waits for a slow reader: about 20 s of a busy server's request log. */
export const LOG_BUFFER_BYTES = 4 * 1024 * 1024;

/** How often `flush` looks whether the reader caught up. */
const FLUSH_POLL_MS = 10;

export interface LogOutputOptions {
  /** What may wait unwritten before new lines are dropped. @default LOG_BUFFER_BYTES */
  maxBufferedBytes?: number;
  /** Told of each dropped line (the metrics count them). */
  onDrop?: () => void;
}

/**
 * A pino destination over a Writable. On Linux, Node writes to a pipe or a
 * socket asynchronously (a file or a terminal synchronously, which cannot
 * stall for long), so `write` never blocks; what the stream holds unwritten
 * is its `writableLength`, and that is what the bound applies to.
 */
export class LogOutput {
  private readonly maxBufferedBytes: number;
  private readonly onDrop?: () => void;
  /** Lines dropped since the reader last caught up, for the line that reports them. */
  private droppedSinceDrain = 0;
  private dropped = 0;
  /** The reader went away (EPIPE) or the stream failed: nothing more can be written. */
  private broken = false;

  constructor(
    private readonly out: Writable,
    options: LogOutputOptions = {},
  ) {
    this.maxBufferedBytes = options.maxBufferedBytes ?? LOG_BUFFER_BYTES;
    this.onDrop = options.onDrop;
    // Without a listener, a reader that closes its end (EPIPE) would crash berth with an uncaught error.
    out.on('error', () => {
      this.broken = true;
    });
    out.on('drain', () => {
      const dropped = this.droppedSinceDrain;
      if (dropped === 0) return;
      this.droppedSinceDrain = 0;
      // Said once the reader catches up, so a gap in the log explains itself.
      this.out.write(droppedLine(dropped));
    });
  }

  /** Lines dropped so far because the reader fell behind or went away. */
  get droppedLines(): number {
    return this.dropped;
  }

  /** Queues one line, or drops it when the reader is too far behind. Never blocks. */
  write(line: string): void {
    // String length, not bytes: the bound is a memory guard, not an exact quota, and this is the hot path.
    if (this.broken || this.out.writableLength + line.length > this.maxBufferedBytes) {
      this.dropped++;
      this.droppedSinceDrain++;
      this.onDrop?.();
      return;
    }
    this.out.write(line);
  }

  /**
   * Resolves once every queued line is written, or after `deadlineMs`,
   * whichever is first: true when all was written. For the last lines
   * before an exit, which would otherwise be lost with the process.
   */
  flush(deadlineMs: number): Promise<boolean> {
    const deadline = Date.now() + deadlineMs;
    return new Promise((resolve) => {
      // Polled: 'drain' is only emitted after a write that found the stream over its high-water mark.
      const check = () => {
        if (this.broken) return resolve(false);
        if (this.out.writableLength === 0) return resolve(true);
        if (Date.now() >= deadline) return resolve(false);
        setTimeout(check, FLUSH_POLL_MS);
      };
      check();
    });
  }
}

/** A warning in the logger's own shape (pino's JSON, level 40), for the lines that could not be written. */
function droppedLine(droppedLines: number): string {
  const line = { level: 40, time: Date.now(), pid: process.pid, name: 'berth', droppedLines, msg: 'log output was not being read: lines were dropped' };
  return `${JSON.stringify(line)}\n`;
}
