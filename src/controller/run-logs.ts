/**
 * Run logs as stored: the tail of each attempt's output, attempts separated
 * by a line that names them, the whole bounded to a byte limit with the
 * number of dropped bytes counted.
 */
import type { Readable } from 'node:stream';
import type { StoredLogs } from '../store/store';

/** The output of one attempt, already cut to the limit. */
export interface OutputTail {
  text: string;
  droppedBytes: number;
}

/** The line put before the output of attempts after the first. */
export const attemptSeparator = (attempt: number): string => `--- berth: attempt ${attempt} ---\n`;

/** Reads a log stream to its end, keeping only the newest `limitBytes`; memory stays near the limit however long the output. */
export async function readTail(stream: Readable, limitBytes: number): Promise<OutputTail> {
  const chunks: Buffer[] = [];
  let held = 0;
  let total = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
    chunks.push(buffer);
    held += buffer.length;
    total += buffer.length;
    while (chunks.length > 1 && held - chunks[0].length >= limitBytes) held -= chunks.shift()!.length;
  }
  const kept = tailBytes(Buffer.concat(chunks), limitBytes);
  return { text: kept.toString('utf8'), droppedBytes: total - kept.length };
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
