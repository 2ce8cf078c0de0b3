import type { ComponentChildren } from 'preact';
import type { RunAnswer, RunPhase } from '../types';

export function Phase({ phase }: { phase: RunPhase }) {
  return <span class={`phase phase-${phase}`}>{phase}</span>;
}

/** A run's outcome in a few words: `Failed · Error · exit 3`. */
export function Outcome({ run }: { run: RunAnswer }) {
  const { reason, exitCode } = run.status;
  return (
    <>
      <Phase phase={run.status.phase} />
      {reason && reason !== 'Completed' && <span class="muted"> {reason}</span>}
      {exitCode !== undefined && exitCode !== 0 && <span class="muted"> exit {exitCode}</span>}
    </>
  );
}

export function Problem({ children, onDismiss }: { children: ComponentChildren; onDismiss?: () => void }) {
  if (!children) return null;
  return (
    <div class="problem" role="alert">
      <span>{children}</span>
      {onDismiss && (
        <button type="button" class="link" onClick={onDismiss} aria-label="Dismiss">
          ×
        </button>
      )}
    </div>
  );
}

export function Source({ source }: { source: string }) {
  return source.startsWith('file:') ? (
    <span class="source source-file" title="declared by a file in the apps folder">
      {source.slice('file:'.length)}
    </span>
  ) : (
    <span class="source source-api">API</span>
  );
}
