import { useEffect, useState } from 'preact/hooks';
import { apiPath, getPage, postJson } from '../api';
import { age, duration, timestamp } from '../format';
import { live } from '../live';
import { useNow, useObservable } from '../observable';
import { go, href } from '../route';
import { sourceFile, type AppAnswer, type RunAnswer, type WatchEvent } from '../types';
import { yamlDocument } from '../yaml';
import { Outcome, Problem, Source } from './common';

/** Runs shown on an App's page, newest first. */
const RUNS_SHOWN = 50;

/** One App: its spec as YAML, its runs, a form to run it with overrides, and where it is declared. */
export function AppView({ name }: { name: string }) {
  useObservable(live);
  const app = live.apps.get(name);
  if (!app) {
    return live.loaded ? (
      <section>
        <h1>{name}</h1>
        <Problem>
          No App named “{name}”. <a href={href.apps()}>All Apps</a>
        </Problem>
      </section>
    ) : (
      <p class="muted">Loading…</p>
    );
  }
  const file = sourceFile(app);
  return (
    <section>
      <div class="toolbar">
        <h1>
          <a href={href.apps()} class="muted">
            Apps
          </a>{' '}
          / {app.name}
        </h1>
        <Source source={app.status.source} />
      </div>
      {file && (
        <p class="note" data-testid="file-note">
          Declared by <code>{file}</code> in the apps folder. Edits go through the repository: change the file and berth applies it; the API refuses to change
          or delete this App.
          {app.status.syncState === 'Error' && (
            <>
              <br />
              <strong>The file does not apply now:</strong> {app.status.syncMessage} (the last good state stays). <a href={href.sources()}>Sources</a>
            </>
          )}
        </p>
      )}
      <div class="columns">
        <div>
          <h2>Runs</h2>
          <RunForm app={app} />
          <RunsTable app={app.name} />
        </div>
        <div>
          <h2>Spec</h2>
          <pre class="yaml" data-testid="spec">
            {yamlDocument({
              apiVersion: app.apiVersion,
              kind: app.kind,
              metadata: { name: app.metadata.name, labels: app.metadata.labels },
              spec: app.spec,
            })}
          </pre>
        </div>
      </div>
    </section>
  );
}

/**
 * Run with overrides: environment as KEY=VALUE lines (added to the App's),
 * a command (a shell-style string, as the API takes it) replacing the App's,
 * and an optional run name.
 */
function RunForm({ app }: { app: AppAnswer }) {
  const [env, setEnv] = useState('');
  const [command, setCommand] = useState('');
  const [runName, setRunName] = useState('');
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setProblem(null);
    const parsed = parseEnv(env);
    if (typeof parsed === 'string') return setProblem(parsed);
    const body: Record<string, unknown> = {};
    if (Object.keys(parsed).length) body.env = parsed;
    if (command.trim()) body.command = command.trim();
    if (runName.trim()) body.name = runName.trim();
    setBusy(true);
    try {
      const run = await postJson<RunAnswer>(apiPath('apps', app.name, 'run'), body);
      go(href.run(app.name, run.id));
    } catch (err) {
      setProblem((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="run-form" onSubmit={submit}>
      <details>
        <summary>Overrides</summary>
        <label>
          Environment <span class="muted">(KEY=VALUE, one a line; added to the App's)</span>
          <textarea name="env" rows={3} value={env} onInput={(e) => setEnv(e.currentTarget.value)} spellcheck={false} />
        </label>
        <label>
          Command <span class="muted">(replaces the App's: {app.spec.command.length ? app.spec.command.join(' ') : "the image's own"})</span>
          <input name="command" value={command} onInput={(e) => setCommand(e.currentTarget.value)} spellcheck={false} />
        </label>
        <label>
          Run name <span class="muted">(optional)</span>
          <input name="name" value={runName} onInput={(e) => setRunName(e.currentTarget.value)} spellcheck={false} />
        </label>
      </details>
      <button type="submit" class="primary" disabled={busy}>
        Run {app.name}
      </button>
      <Problem onDismiss={() => setProblem(null)}>{problem}</Problem>
    </form>
  );
}

/** `KEY=VALUE` lines as an object, or the first line that is not one, named. */
export function parseEnv(text: string): Record<string, string> | string {
  const env: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return `environment line ${i + 1} ("${line}") is not KEY=VALUE`;
    env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return env;
}

/** The App's runs, newest first, kept current from the event stream. */
function RunsTable({ app }: { app: string }) {
  const now = useNow(1000);
  const [list, setList] = useState<RunList | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    const stop = new AbortController();
    // Changes that arrive before the list are applied to it once it is read: none is lost in between.
    const early: WatchEvent[] = [];
    const unsubscribe = live.onEvent((event) => {
      if (event.type === 'SYNC' || event.object.kind !== 'Run' || event.object.app !== app) return;
      setList((list) => {
        if (!list) early.push(event);
        return list && withRunEvent(list, event);
      });
    });
    getPage<RunAnswer>(apiPath('apps', app, 'run'), { limit: RUNS_SHOWN }, stop.signal).then(
      ({ items, total }) => setList(early.reduce(withRunEvent, { runs: items, total })),
      (err: Error) => !stop.signal.aborted && setProblem(`cannot read the runs: ${err.message}`),
    );
    return () => {
      stop.abort();
      unsubscribe();
    };
  }, [app, live.opened]);

  if (problem) return <Problem>{problem}</Problem>;
  if (!list) return <p class="muted">Loading runs…</p>;
  const { runs, total } = list;
  if (runs.length === 0) return <p class="empty">No runs yet.</p>;
  return (
    <>
      <table class="list runs">
        <thead>
          <tr>
            <th>Run</th>
            <th>Phase</th>
            <th>Exit</th>
            <th>Started</th>
            <th>Duration</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.id} data-run={run.id}>
              <td>
                <a href={href.run(app, run.id)}>{run.metadata.name}</a>
              </td>
              <td>
                <Outcome run={run} />
              </td>
              <td>{run.status.exitCode ?? ''}</td>
              <td title={timestamp(run.status.startedAt)}>{run.status.startedAt ? `${age(run.status.startedAt, now)} ago` : ''}</td>
              <td>{duration(run.status.startedAt, run.status.finishedAt, now)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {total > runs.length && (
        <p class="muted">
          The newest {runs.length} of {total} runs.
        </p>
      )}
    </>
  );
}

interface RunList {
  runs: RunAnswer[];
  total: number;
}

/** The list after one change to one of its runs: newest first, at most RUNS_SHOWN, the total kept. */
function withRunEvent(list: RunList, event: WatchEvent): RunList {
  const run = event.object as RunAnswer;
  const current = list.runs.find((r) => r.id === run.id);
  const rest = list.runs.filter((r) => r.id !== run.id);
  if (event.type === 'DELETED') return { runs: rest, total: list.total - (current ? 1 : 0) };
  if (current && Number(current.metadata.resourceVersion) > Number(run.metadata.resourceVersion)) return list;
  const total = list.total + (!current && event.type === 'ADDED' ? 1 : 0);
  return { runs: [...rest, run].sort((a, b) => b.id - a.id).slice(0, RUNS_SHOWN), total };
}
