/** kubectl's ages: `45s`, `12m`, `5h`, `3d`. */
export function age(iso: string | undefined, now: number): string {
  if (!iso) return '';
  const seconds = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 2 * 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 2 * 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** How long from `start` to `end` (or to now, while it lasts): `850ms`, `42s`, `3m05s`, `2h10m`. */
export function duration(start: string | undefined, end: string | undefined, now: number): string {
  if (!start) return '';
  const ms = Math.max(0, (end ? Date.parse(end) : now) - Date.parse(start));
  if (ms < 1000) return `${ms}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** A timestamp in the reader's locale, with its ISO form kept for a tooltip. */
export function timestamp(iso: string | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '';
}
