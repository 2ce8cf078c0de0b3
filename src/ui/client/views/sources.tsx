import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson } from '../api';
import { age, timestamp } from '../format';
import { live } from '../live';
import { useNow } from '../observable';
import { href } from '../route';
import type { FileReport, FolderReport } from '../types';
import { Problem } from './common';

/** Sync events come in bursts (a checkout changes many files): read the report at most this often. */
const REFRESH_MS = 300;

/** The apps folder's sync status, file by file, each error at file:line:column. */
export function SourcesView() {
  const now = useNow(5000);
  const [report, setReport] = useState<FolderReport | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    const stop = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const read = (): void => {
      timer = undefined;
      getJson<FolderReport>('sources/', stop.signal).then(
        (r) => {
          setReport(r);
          setProblem(null);
        },
        (err: Error) => {
          if (stop.signal.aborted) return;
          setProblem(err instanceof ApiError && err.status === 404 ? err.message : `cannot read the sources: ${err.message}`);
        },
      );
    };
    read();
    const unsubscribe = live.onEvent((event) => {
      if (event.type === 'SYNC' && timer === undefined) timer = setTimeout(read, REFRESH_MS);
    });
    return () => {
      stop.abort();
      clearTimeout(timer);
      unsubscribe();
    };
  }, [live.opened]);

  return (
    <section>
      <div class="toolbar">
        <h1>Sources</h1>
        {report && (
          <span class="muted">
            <code>{report.dir}</code>
            {report.git && (
              <>
                {' '}
                at commit <code>{report.git.commit.slice(0, 12)}</code>
              </>
            )}
            {report.lastSyncAt && <>, synced {age(report.lastSyncAt, now)} ago</>}
            {!report.ready && <>, first scan in progress</>}
          </span>
        )}
      </div>
      <Problem>{problem}</Problem>
      {report && (
        <>
          <p class="summary" data-testid="sources-summary">
            {report.summary.files} files: {report.summary.synced} synced,{' '}
            <span class={report.summary.error ? 'bad' : ''}>{report.summary.error} with errors</span>
          </p>
          {report.files.length === 0 ? (
            <p class="empty">No App or Run files in the folder.</p>
          ) : (
            <table class="list files">
              <thead>
                <tr>
                  <th>File</th>
                  <th>State</th>
                  <th>Declares</th>
                  <th>Applied</th>
                </tr>
              </thead>
              <tbody>
                {report.files.map((file) => (
                  <FileRow key={file.path} file={file} now={now} />
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}

function FileRow({ file, now }: { file: FileReport; now: number }) {
  return (
    <>
      <tr data-file={file.path}>
        <td>
          <code>{file.path}</code>
        </td>
        <td>
          <span class={`phase ${file.state === 'Synced' ? 'phase-Succeeded' : 'phase-Failed'}`}>{file.state}</span>
        </td>
        <td>
          {file.objects.map((o, i) => (
            <span key={`${o.kind}/${o.name}`}>
              {i > 0 && ', '}
              {o.kind === 'App' ? <a href={href.app(o.name)}>{o.name}</a> : `run/${o.name}`}
            </span>
          ))}
        </td>
        <td title={timestamp(file.lastAppliedAt)}>{file.lastAppliedAt ? `${age(file.lastAppliedAt, now)} ago` : 'never'}</td>
      </tr>
      {file.errors.length > 0 && (
        <tr class="file-errors">
          <td colSpan={4}>
            <ul>
              {file.errors.map((e, i) => (
                <li key={i} class="file-error">
                  <code>
                    {file.path}
                    {e.line !== undefined && `:${e.line}`}
                    {e.line !== undefined && e.column !== undefined && `:${e.column}`}
                  </code>{' '}
                  {e.document !== undefined && <span class="muted">document {e.document + 1} </span>}
                  <strong>{e.field}</strong>: {e.reason}
                </li>
              ))}
            </ul>
            {file.state === 'Error' && file.lastAppliedAt && <p class="muted">What the file last applied stays in place until it is fixed.</p>}
          </td>
        </tr>
      )}
    </>
  );
}
