import { Component } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { apiPath, postJson } from '../api';
import { age } from '../format';
import { live } from '../live';
import { useNow, useObservable } from '../observable';
import { go, href } from '../route';
import type { AppAnswer, RunAnswer } from '../types';
import { Outcome, Problem, Source } from './common';

const FILTER_KEY = 'berth.filter';
/**
 * Rows rendered at first, and added each time the reader scrolls near the
 * end: a browser lays out a thousand table rows in about a second on a slow
 * machine, and nobody reads them all at once (the filter finds any App).
 */
const ROWS_AT_FIRST = 100;
const ROWS_MORE = 200;

/** What the filter box matches an App against, worked out once per version of the App. */
const haystacks = new WeakMap<AppAnswer, string>();
function haystack(app: AppAnswer): string {
  let text = haystacks.get(app);
  if (text === undefined) {
    const labels = Object.entries(app.metadata.labels).map(([k, v]) => `${k}=${v}`);
    text = [app.name, app.image, app.status.source, ...labels].join('\n').toLowerCase();
    haystacks.set(app, text);
  }
  return text;
}

/** Every word of the filter must appear in the name, image, source or a `key=value` label. */
export function filterApps(apps: AppAnswer[], filter: string): AppAnswer[] {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return apps;
  return apps.filter((app) => words.every((word) => haystack(app).includes(word)));
}

/** The Apps: name, image, source, last run; a filter box and a run button on each. */
export function AppsView() {
  useObservable(live);
  const now = useNow(5000);
  const [filter, setFilter] = useState(() => sessionStorage.getItem(FILTER_KEY) ?? '');
  const [starting, setStarting] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const all = live.appList();
  const shown = useMemo(() => filterApps(all, filter), [all, filter]);
  const [limit, setLimit] = useState(ROWS_AT_FIRST);
  useEffect(() => setLimit(ROWS_AT_FIRST), [filter]);
  const rows = shown.length > limit ? shown.slice(0, limit) : shown;

  const changeFilter = (value: string): void => {
    setFilter(value);
    sessionStorage.setItem(FILTER_KEY, value);
  };
  const run = async (app: string): Promise<void> => {
    setStarting(app);
    setProblem(null);
    try {
      const started = await postJson<RunAnswer>(apiPath('apps', app, 'run'));
      go(href.run(app, started.id));
    } catch (err) {
      setProblem(`cannot run ${app}: ${(err as Error).message}`);
    } finally {
      setStarting(null);
    }
  };

  return (
    <section>
      <div class="toolbar">
        <h1>Apps</h1>
        <input
          type="search"
          class="filter"
          placeholder="Filter by name, image, source or label"
          aria-label="Filter Apps"
          value={filter}
          onInput={(e) => changeFilter(e.currentTarget.value)}
        />
        <span class="muted count" data-testid="app-count">
          {live.loaded ? (shown.length === all.length ? `${all.length} Apps` : `${shown.length} of ${all.length} Apps`) : 'Loading…'}
        </span>
      </div>
      <Problem onDismiss={() => setProblem(null)}>{problem}</Problem>
      {live.loaded && all.length === 0 && (
        <p class="empty">
          No Apps yet. Create one with <code>POST /apps/</code> or put its YAML in the apps folder.
        </p>
      )}
      {shown.length > 0 && (
        <table class="list apps">
          <thead>
            <tr>
              <th>Name</th>
              <th>Image</th>
              <th>Source</th>
              <th>Last run</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {rows.map((app) => (
              <AppRow key={app.metadata.uid} app={app} last={live.lastRun.get(app.name)} now={now} starting={starting === app.name} onRun={run} />
            ))}
          </tbody>
        </table>
      )}
      {rows.length < shown.length && <MoreRows left={shown.length - rows.length} onMore={() => setLimit((n) => n + ROWS_MORE)} />}
    </section>
  );
}

/** Asks for more rows when it scrolls into view (or is clicked). */
function MoreRows({ left, onMore }: { left: number; onMore: () => void }) {
  const button = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    // A new observer after each growth: its first report says whether the end is still in view.
    const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && onMore(), { rootMargin: '400px' });
    observer.observe(button.current!);
    return () => observer.disconnect();
  }, [left]);
  return (
    <p class="more">
      <button type="button" class="link" ref={button} onClick={onMore}>
        {left} more…
      </button>
    </p>
  );
}

interface AppRowProps {
  app: AppAnswer;
  last: RunAnswer | undefined;
  now: number;
  starting: boolean;
  onRun: (app: string) => void;
}

/**
 * One App's row. It renders again only when its own App, last run, clock or
 * button changed, so an event about one App among 1,000 touches one row.
 */
class AppRow extends Component<AppRowProps> {
  override shouldComponentUpdate(next: AppRowProps): boolean {
    const p = this.props;
    return next.app !== p.app || next.last !== p.last || next.starting !== p.starting || (next.now !== p.now && next.last !== undefined);
  }

  override render({ app, last, now, starting, onRun }: AppRowProps) {
    return (
      <tr data-app={app.name}>
        <td>
          <a href={href.app(app.name)}>{app.name}</a>
        </td>
        <td class="image">{app.image}</td>
        <td>
          <Source source={app.status.source} />
          {app.status.syncState === 'Error' && (
            <span class="phase phase-Failed" title={app.status.syncMessage}>
              sync error
            </span>
          )}
        </td>
        <td class="last-run">
          {last && (
            <a href={href.run(app.name, last.id)}>
              <Outcome run={last} /> <span class="muted">{age(last.metadata.creationTimestamp, now)} ago</span>
            </a>
          )}
        </td>
        <td class="actions">
          <button type="button" disabled={starting} onClick={() => onRun(app.name)}>
            Run
          </button>
        </td>
      </tr>
    );
  }
}
