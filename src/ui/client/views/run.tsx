import { useEffect, useRef, useState } from 'preact/hooks';
import { apiPath, ApiError, getJson, postJson, readText, request } from '../api';
import { sleep } from '../events';
import { duration, timestamp } from '../format';
import { live } from '../live';
import { useNow } from '../observable';
import { href } from '../route';
import { isFinished, type RunAnswer } from '../types';
import { Outcome, Phase, Problem } from './common';

/** How long a Pending run's page waits for news before asking for its logs again. */
const LOG_RETRY_MS = 2000;

/** One run: status, attempts, timestamps, its logs (live while it runs), and cancel. */
export function RunView({ app, run: runRef }: { app: string; run: string }) {
  const now = useNow(1000);
  const run = useLiveRun(app, runRef);
  if (run instanceof Error) {
    return (
      <section>
        <Problem>{run.message}</Problem>
        <a href={href.app(app)}>Back to {app}</a>
      </section>
    );
  }
  if (!run) return <p class="muted">Loading…</p>;
  const s = run.status;
  return (
    <section>
      <div class="toolbar">
        <h1>
          <a href={href.apps()} class="muted">
            Apps
          </a>{' '}
          /{' '}
          <a href={href.app(app)} class="muted">
            {app}
          </a>{' '}
          / {run.metadata.name}
        </h1>
        <span data-testid="run-phase">
          <Outcome run={run} />
        </span>
        {!isFinished(run) && <CancelButton run={run} />}
      </div>
      {s.message && <p class="note">{s.message}</p>}
      <dl class="facts">
        <dt>Phase</dt>
        <dd>
          <Phase phase={s.phase} />
          {s.cancelRequested && !isFinished(run) && <span class="muted"> cancelling…</span>}
        </dd>
        <dt>Reason</dt>
        <dd>{s.reason ?? '—'}</dd>
        <dt>Exit code</dt>
        <dd data-testid="exit-code">{s.exitCode ?? '—'}</dd>
        <dt>Attempts</dt>
        <dd>{s.attempts}</dd>
        <dt>Asked for</dt>
        <dd>{timestamp(run.metadata.creationTimestamp)}</dd>
        <dt>Started</dt>
        <dd>{timestamp(s.startedAt) || '—'}</dd>
        <dt>Finished</dt>
        <dd>{timestamp(s.finishedAt) || '—'}</dd>
        <dt>Duration</dt>
        <dd>{duration(s.startedAt, s.finishedAt, now) || '—'}</dd>
        <dt>Workload</dt>
        <dd>{s.containerName ? `${s.containerName} (${s.runtime ?? 'docker'})` : '—'}</dd>
        {run.spec.command && (
          <>
            <dt>Command</dt>
            <dd>
              <code>{run.spec.command.join(' ')}</code>
            </dd>
          </>
        )}
        {run.spec.env && Object.keys(run.spec.env).length > 0 && (
          <>
            <dt>Environment</dt>
            <dd>
              <code>
                {Object.entries(run.spec.env)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(' ')}
              </code>
            </dd>
          </>
        )}
      </dl>
      {s.history && s.history.length > 1 && (
        <table class="list attempts">
          <thead>
            <tr>
              <th>Attempt</th>
              <th>Reason</th>
              <th>Exit</th>
              <th>Started</th>
              <th>Duration</th>
              <th>Message</th>
            </tr>
          </thead>
          <tbody>
            {s.history.map((a) => (
              <tr key={a.attempt}>
                <td>{a.attempt}</td>
                <td>{a.reason ?? ''}</td>
                <td>{a.exitCode ?? ''}</td>
                <td>{timestamp(a.startedAt)}</td>
                <td>{duration(a.startedAt, a.finishedAt, now)}</td>
                <td>{a.message ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Logs</h2>
      <Logs app={app} run={run} />
    </section>
  );
}

/** The run, read once and then kept current from the event stream; an Error when it cannot be read. */
function useLiveRun(app: string, runRef: string): RunAnswer | Error | null {
  const [run, setRun] = useState<RunAnswer | Error | null>(null);
  useEffect(() => {
    const stop = new AbortController();
    const later = (a: RunAnswer, b: RunAnswer | Error | null): RunAnswer =>
      b instanceof Error || !b || Number(a.metadata.resourceVersion) >= Number(b.metadata.resourceVersion) ? a : b;
    const unsubscribe = live.onEvent((event) => {
      if (event.type === 'SYNC' || event.object.kind !== 'Run' || event.object.app !== app) return;
      const changed = event.object;
      if (String(changed.id) !== runRef && changed.metadata.name !== runRef) return;
      if (event.type === 'DELETED') setRun(new Error(`run ${changed.metadata.name} was deleted (history limit, or its App deleted)`));
      else setRun((current) => later(changed, current));
    });
    getJson<RunAnswer>(apiPath('apps', app, 'run', runRef), stop.signal).then(
      (read) => setRun((current) => later(read, current)),
      (err: Error) => !stop.signal.aborted && setRun(err),
    );
    return () => {
      stop.abort();
      unsubscribe();
    };
  }, [app, runRef, live.opened]);
  return run;
}

function CancelButton({ run }: { run: RunAnswer }) {
  const [confirming, setConfirming] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    if (!confirming) return;
    const timer = setTimeout(() => setConfirming(false), 5000);
    return () => clearTimeout(timer);
  }, [confirming]);
  const cancel = async (): Promise<void> => {
    if (!confirming) return setConfirming(true);
    setConfirming(false);
    try {
      await postJson(apiPath('apps', run.app, 'run', run.id, 'cancel'));
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  return (
    <>
      <button type="button" class={confirming ? 'danger' : ''} disabled={!!run.status.cancelRequested} onClick={cancel}>
        {confirming ? 'Confirm cancel' : 'Cancel run'}
      </button>
      <Problem onDismiss={() => setProblem(null)}>{problem}</Problem>
    </>
  );
}

/**
 * The run's output. While the run is not finished it is followed
 * (`?follow=1`, read as a stream); each follow answers the output from the
 * start, so it replaces what is shown. Once the run is finished, the stored
 * logs (every attempt's output, kept after the container is gone) replace it.
 * Text is appended to the DOM as it arrives, not re-rendered whole.
 */
function Logs({ app, run }: { app: string; run: RunAnswer }) {
  const pre = useRef<HTMLPreElement>(null);
  const latest = useRef(run);
  latest.current = run;
  const changed = useRef<() => void>(() => undefined);
  const [state, setState] = useState<{ following: boolean; note?: string }>({ following: false });

  useEffect(() => changed.current(), [run]);

  useEffect(() => {
    const stop = new AbortController();
    const out = pre.current!;
    const atBottom = (): boolean => out.scrollHeight - out.scrollTop - out.clientHeight < 20;
    const show = (text: string, replace: boolean): void => {
      const stick = atBottom();
      if (replace) out.textContent = text;
      else out.append(text);
      if (stick) out.scrollTop = out.scrollHeight;
    };
    const runChanged = (ms: number): Promise<void> =>
      new Promise((resolve) => {
        const local = new AbortController();
        changed.current = () => local.abort();
        stop.signal.addEventListener('abort', () => local.abort(), { once: true });
        void sleep(ms, local.signal).then(resolve);
      });
    const path = apiPath('apps', app, 'run', run.id, 'logs');

    void (async () => {
      while (!stop.signal.aborted) {
        try {
          if (isFinished(latest.current)) {
            const res = await request(path, { signal: stop.signal, accept: 'text/plain' });
            show(await res.text(), true);
            const dropped = Number(res.headers.get('x-berth-dropped-bytes') ?? 0);
            setState({ following: false, note: dropped ? `The first ${dropped} bytes of output were not kept (--log-limit).` : undefined });
            return;
          }
          const res = await request(`${path}?follow=1`, { signal: stop.signal, accept: 'text/plain' });
          setState({ following: true });
          show('', true);
          await readText(res.body!, stop.signal, (text) => show(text, false));
          if (stop.signal.aborted) return;
          setState({ following: false });
        } catch (err) {
          if (stop.signal.aborted) return;
          setState({ following: false, note: (err as Error).message });
          // Too many followers (503): show what is stored meanwhile.
          if (err instanceof ApiError && err.status === 503) {
            const stored = await request(path, { signal: stop.signal, accept: 'text/plain' }).then(
              (r) => r.text(),
              () => null,
            );
            if (stored !== null) show(stored, true);
          }
        }
        // The stream ended (not launched yet, or the attempt ended): ask again when the run changes.
        await runChanged(LOG_RETRY_MS);
      }
    })();
    return () => stop.abort();
  }, [app, run.id]);

  return (
    <>
      <p class="muted log-state" data-testid="log-state">
        {state.following ? 'following live output…' : isFinished(run) ? 'stored output' : 'waiting for output…'}
        {state.note && <> — {state.note}</>}
      </p>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling log must take focus for keyboard users to scroll it */}
      <pre class="logs" ref={pre} data-testid="logs" tabIndex={0} />
    </>
  );
}
