/**
 * Follows runs through berth's `/events/` stream, as the benchmarks must: a
 * poll would charge its interval to berth, or load the server it measures.
 */
import { isTerminal, RunPhase } from '../src/model/types';

/**
 * Opens `/events/?QUERY` and calls `onEvent` with each event's type (ADDED,
 * MODIFIED, DELETED, SYNC) and object until `signal` aborts (or the server
 * goes away); resolves once the stream is open.
 */
export async function followEvents<T>(url: string, query: string, onEvent: (type: string, object: T) => void, signal: AbortSignal): Promise<void> {
  const res = await fetch(`${url}/events/?${query}`, { signal });
  if (!res.ok || !res.body) throw new Error(`GET /events/ → ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const lines = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          const type =
            lines
              .find((line) => line.startsWith('event:'))
              ?.slice(6)
              .trim() ?? 'message';
          const data = lines.find((line) => line.startsWith('data:'));
          if (data) onEvent(type, JSON.parse(data.slice(5)) as T);
        }
      }
    } catch {
      // closed, or the server went away
    }
  })();
}

/** Follows the runs of `app`: `onRun` gets each event's object. */
export function followRuns<T>(url: string, app: string, onRun: (run: T) => void, signal: AbortSignal): Promise<void> {
  return followEvents<T>(url, `kind=Run&app=${app}`, (_, run) => onRun(run), signal);
}

export type RunAnswer = { id: number; status: { phase: string } };

/** Follows berth's event stream and resolves waiters when runs finish. */
export class RunWatcher {
  private readonly finished = new Map<number, string>();
  private readonly waiters = new Map<number, () => void>();
  private readonly abort = new AbortController();

  async open(url: string, app: string): Promise<void> {
    await followRuns(url, app, (run: RunAnswer) => this.onRun(run), this.abort.signal);
  }

  private onRun(run: RunAnswer): void {
    if (!run.status?.phase || !isTerminal(run.status.phase as RunPhase)) return;
    this.finished.set(run.id, run.status.phase);
    this.waiters.get(run.id)?.();
  }

  async waitFinished(id: number, timeoutMs = 60_000): Promise<string> {
    if (!this.finished.has(id)) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`run ${id} did not finish within ${timeoutMs} ms`)), timeoutMs);
        this.waiters.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.waiters.delete(id);
    }
    return this.finished.get(id) as string;
  }

  close(): void {
    this.abort.abort();
  }
}
