/**
 * Run logs as stored: the tail of each attempt's output, attempts separated
 * by a line that names them, the whole bounded to a byte limit with the
 * number of dropped bytes counted.
 */
import type { Readable } from 'node:stream';
import { BerthError } from '../errors';
import type { StoredLogs } from '../store/store';

/** The output of one attempt, already cut to the limit. */
export interface OutputTail {
  text: string;
  droppedBytes: number;
}

/** The line put before the output of attempts after the first. */
export const attemptSeparator = (attempt: number): string => `--- berth: attempt ${attempt} ---\n`;

/** The line put after output whose copy stopped short, saying why. */
export const incompleteNote = (reason: string): string => `--- berth: output incomplete: ${reason} ---\n`;

/**
 * Reading a workload's output took longer than its deadline. Not the
 * runtime being away (that is RuntimeUnavailableError, and waited out): the
 * output is long or slow to come, and reading it again would take as long.
 * `partial` holds the tail of what was read by then.
 */
export class LogReadTimeoutError extends BerthError {
  readonly status = 504;
  readonly code = 'LogReadTimeout';
  constructor(
    message: string,
    readonly partial: OutputTail,
  ) {
    super(message);
  }
}

/**
 * The newest `limitBytes` of what is pushed into it, and how many bytes came
 * before them. Holds at most the limit and one chunk, however long the
 * output; chunks are kept as they come (text, mostly), never copied.
 */
export class TailBuffer {
  private chunks: { chunk: Buffer | string; bytes: number }[] = [];
  private held = 0;
  private total = 0;

  constructor(private readonly limitBytes: number) {}

  /** Bytes pushed so far. */
  get bytesSeen(): number {
    return this.total;
  }

  push(chunk: Buffer | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.byteLength(chunk, 'utf8') : chunk.length;
    this.chunks.push({ chunk, bytes });
    this.held += bytes;
    this.total += bytes;
    while (this.chunks.length > 1 && this.held - this.chunks[0].bytes >= this.limitBytes) this.held -= this.chunks.shift()!.bytes;
  }

  result(): OutputTail {
    const kept = tailBytes(Buffer.concat(this.chunks.map(({ chunk }) => (typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk))), this.limitBytes);
    return { text: kept.toString('utf8'), droppedBytes: this.total - kept.length };
  }
}

/**
 * Reads a log stream to its end, keeping only the newest `limitBytes`;
 * memory stays near the limit however long the output.
 *
 * @param deadlineMs - how long the whole read may take. @default no deadline
 * @throws LogReadTimeoutError when the deadline passes first, with the tail of what was read.
 */
export async function readTail(stream: Readable, limitBytes: number, deadlineMs = Number.POSITIVE_INFINITY): Promise<OutputTail> {
  const tail = new TailBuffer(limitBytes);
  let timedOut = false;
  const timer = Number.isFinite(deadlineMs)
    ? setTimeout(() => {
        timedOut = true;
        stream.destroy();
      }, deadlineMs)
    : undefined;
  try {
    for await (const chunk of stream) tail.push(chunk as Buffer | string);
  } catch (error) {
    if (!timedOut) throw error;
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) {
    const message = `reading the output took longer than ${deadlineMs} ms; the copy stops after ${tail.bytesSeen} bytes`;
    throw new LogReadTimeoutError(message, tail.result());
  }
  return tail.result();
}

/** `output` with a closing line saying why it stops short. */
export function withIncompleteNote(output: OutputTail, reason: string): OutputTail {
  const separator = output.text === '' || output.text.endsWith('\n') ? '' : '\n';
  return { text: `${output.text}${separator}${incompleteNote(reason)}`, droppedBytes: output.droppedBytes };
}

/**
 * The stored logs after attempt `attempt`'s output is added. Collecting the
 * same attempt twice (a reconcile retried after a conflict) replaces its
 * earlier copy instead of repeating it.
 */
export function appendAttempt(previous: StoredLogs | null, attempt: number, output: OutputTail, limitBytes: number): StoredLogs {
  let base = '';
  let dropped = output.droppedBytes;
  if (attempt > 1 && previous) {
    const separator = attemptSeparator(attempt);
    const at = previous.content.startsWith(separator) ? 0 : previous.content.indexOf(`\n${separator}`);
    base = at < 0 ? previous.content : previous.content.slice(0, at + (at === 0 ? 0 : 1));
    dropped += previous.droppedBytes;
    if (base && !base.endsWith('\n')) base += '\n';
  }
  const combined = Buffer.from(base + (attempt > 1 ? attemptSeparator(attempt) : '') + output.text, 'utf8');
  const kept = tailBytes(combined, limitBytes);
  return { content: kept.toString('utf8'), droppedBytes: dropped + combined.length - kept.length };
}

/** The last `limit` bytes, moved forward past any partial UTF-8 character at the cut. */
function tailBytes(buffer: Buffer, limit: number): Buffer {
  if (buffer.length <= limit) return buffer;
  let start = buffer.length - limit;
  // 0b10xxxxxx bytes continue a character whose first byte was cut off.
  while (start < buffer.length && (buffer[start] & 0xc0) === 0x80) start++;
  return buffer.subarray(start);
}
