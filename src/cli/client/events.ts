import type { AppAnswer, RunAnswer } from '../../api/present';
import type { SyncEvent } from '../../sources/report';
import type { ApiClient } from './api-client';
import { CliError, ExitCode } from './exit';

/** One Server-Sent Event from `/events/`: `ADDED`, `MODIFIED`, `DELETED` (an App or Run as the API answers it) or `SYNC`. */
export interface ServerEvent {
  type: string;
  object: AppAnswer | RunAnswer | (SyncEvent & { kind: 'Source' });
}

export interface EventFilter {
  kind?: 'App' | 'Run' | 'Source';
  app?: string;
}

/**
 * A subscription to `/events/`. `open` resolves once the server answered, so
 * a caller can subscribe, then read current state, and miss no change made
 * in between; iterate it for the events that follow, and `close` it when done.
 */
export class EventStream implements AsyncIterable<ServerEvent> {
  private readonly abort = new AbortController();
  private response?: Response;

  private constructor(private readonly client: ApiClient) {}

  static async open(client: ApiClient, filter: EventFilter = {}): Promise<EventStream> {
    const stream = new EventStream(client);
    stream.response = await client.stream('/events/', { ...filter }, stream.abort.signal);
    return stream;
  }

  close(): void {
    this.abort.abort();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ServerEvent> {
    const body = this.response!.body;
    if (!body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        // Events end with a blank line; a partial one waits for the next chunk.
        let end: number;
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
          const event = parseEvent(block);
          if (event) yield event;
        }
      }
    } catch (err) {
      if (this.abort.signal.aborted) return;
      throw new CliError(`lost the event stream of ${this.client.server}: ${(err as Error).message}`, ExitCode.Unreachable);
    }
    if (!this.abort.signal.aborted) {
      throw new CliError(`${this.client.server} closed the event stream (is it shutting down?)`, ExitCode.Unreachable);
    }
  }
}

function parseEvent(block: string): ServerEvent | undefined {
  let type = 'message';
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return undefined;
  return { type, object: JSON.parse(data.join('\n')) };
}
