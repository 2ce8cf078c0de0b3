/**
 * Pulling images and reading the engine's pull progress stream, where a
 * failure can arrive either as an HTTP error or as an `error` line after a
 * 200 answer.
 */

import type { Readable } from 'node:stream';

/** One line of the engine's pull progress. */
interface PullProgress {
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * Not dockerode's `modem.followProgress`: it parses each line with a bare
 * `JSON.parse` inside its `data` handler (a line the engine or a proxy
 * garbles throws out of the stream, an uncaught exception that ends berth),
 * counts a `close` that comes without `end` as a finished pull,
 * and keeps every progress line of the pull in memory.
 *
 * Reads a pull progress stream (or an image import's, which has the same form) to its end. Resolves when the pull completed,
 * rejects with an Error carrying the registry's message when a line reports
 * one, and with the stream's own error if the connection breaks.
 */
export function awaitPull(progress: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let failure: string | undefined;
    const readLine = (line: string): void => {
      if (!line.trim() || failure !== undefined) return;
      let event: PullProgress;
      try {
        event = JSON.parse(line) as PullProgress;
      } catch {
        return;
      }
      const message = event.errorDetail?.message || event.error;
      if (message) failure = message;
    };
    progress.setEncoding('utf8');
    progress.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        readLine(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
      }
    });
    progress.once('error', reject);
    progress.once('end', () => {
      readLine(buffered);
      if (failure !== undefined) reject(new Error(failure));
      else resolve();
    });
  });
}
