import { ApiError, readText, request } from './api';
import type { WatchEvent } from './types';

export interface EventStreamHandlers {
  /** Subscribed: changes from now on will arrive, so this is the moment to (re)read the lists. */
  onOpen(): void;
  onEvent(event: WatchEvent): void;
  /** The stream broke or ended; it is reopened after the server's `retry:` delay. */
  onDrop(reason: string): void;
}

const EVENT_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'SYNC']);

/**
 * Follows `GET /events/` until `signal` aborts, reconnecting when the stream
 * drops. EventSource cannot send an Authorization header, so this reads the
 * Server-Sent Events from fetch()'s streaming body instead. A 401 ends the
 * watch: the token prompt is up, and the next session starts a new one.
 */
export async function watchEvents(handlers: EventStreamHandlers, signal: AbortSignal): Promise<void> {
  let retryMs = 3000;
  while (!signal.aborted) {
    let delay = retryMs;
    try {
      const res = await request('events/', { signal, accept: 'text/event-stream' });
      handlers.onOpen();
      await readEvents(res.body!, signal, (type, data) => {
        if (type === 'retry') retryMs = delay = Number(data) || retryMs;
        else if (EVENT_TYPES.has(type)) handlers.onEvent({ type, object: JSON.parse(data) } as WatchEvent);
      });
      if (signal.aborted) return;
      handlers.onDrop('the event stream ended');
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status === 401) return;
      if (err instanceof ApiError && err.retryAfterSeconds) delay = err.retryAfterSeconds * 1000;
      handlers.onDrop((err as Error).message);
    }
    await sleep(delay, signal);
  }
}

/**
 * Reads Server-Sent Events: blocks separated by a blank line, `event:` and
 * `data:` fields (several data lines join with newlines), `retry:`, and
 * comment lines (`: heartbeat`) skipped.
 */
async function readEvents(body: ReadableStream<Uint8Array>, signal: AbortSignal, onField: (type: string, data: string) => void) {
  let buffer = '';
  await readText(body, signal, (text) => {
    buffer += text;
    for (let end = /\r?\n\r?\n/.exec(buffer); end; end = /\r?\n\r?\n/.exec(buffer)) {
      const block = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end[0].length);
      let type = 'message';
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') type = value;
        else if (field === 'data') data.push(value);
        else if (field === 'retry') onField('retry', value);
      }
      if (data.length) onField(type, data.join('\n'));
    }
  });
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
