/**
 * How the client prints: aligned tables, ages and durations as kubectl
 * writes them, and colour only where a person reads it.
 */

/** Colour on a terminal, never with NO_COLOR (https://no-color.org: any non-empty value). */
export function useColour(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR;
}

const PHASE_COLOURS: Record<string, number> = { Succeeded: 32, Failed: 31, Running: 36, Pending: 33, Cancelled: 90, Error: 31, Synced: 32 };

/** A phase or sync state, coloured by what it means when colour is on. */
export function paint(word: string, colour = useColour()): string {
  const code = PHASE_COLOURS[word];
  return colour && code ? `\x1b[${code}m${word}\x1b[0m` : word;
}

/** A table whose columns keep the widths of its first rows, so rows printed later (a watch) line up under them. */
export class Table {
  private widths: number[];

  constructor(
    private readonly headers: string[],
    rows: string[][] = [],
    private readonly colourColumn?: number,
    minWidths: number[] = [],
  ) {
    this.widths = headers.map((h, i) => Math.max(h.length, minWidths[i] ?? 0, ...rows.map((r) => (r[i] ?? '').length)));
  }

  header(): string {
    return this.line(this.headers, false);
  }

  line(cells: string[], colour = useColour()): string {
    const last = cells.length - 1;
    return cells
      .map((cell, i) => {
        const padded = i === last ? cell : cell.padEnd(this.widths[i]);
        return i === this.colourColumn ? padded.replace(cell, paint(cell, colour)) : padded;
      })
      .join('   ')
      .trimEnd();
  }
}

/** `5s`, `3m12s`, `2h5m`, `4d3h`: how kubectl writes an age. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return d < 7 && h % 24 ? `${d}d${h % 24}h` : `${d}d`;
}

/** Time since an ISO timestamp, or `<unknown>`. */
export function age(timestamp: string | undefined, now = Date.now()): string {
  const t = timestamp ? Date.parse(timestamp) : NaN;
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

/** From start to end (or to now while it goes on); `-` before it started. */
export function span(startedAt: string | undefined, finishedAt: string | undefined, now = Date.now()): string {
  if (!startedAt) return '-';
  const end = finishedAt ? Date.parse(finishedAt) : now;
  return humanDuration(end - Date.parse(startedAt));
}

/** Writes to stdout, ending quietly when the reader has gone (`berth get runs | head`). */
export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}
