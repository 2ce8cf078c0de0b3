import { useEffect, useState } from 'preact/hooks';

/**
 * State that views subscribe to. Changes are announced at most once per
 * 16 ms: a burst of events (a folder of 1,000 Apps applied) costs one render,
 * not a thousand.
 */
export class Observable {
  private readonly listeners = new Set<() => void>();
  private scheduled = false;

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      for (const listener of [...this.listeners]) listener();
    }, 16);
  }
}

/** Re-renders the component whenever `observable` announces a change; returns it for convenience. */
export function useObservable<T extends Observable>(observable: T): T {
  const [, setTick] = useState(0);
  useEffect(() => observable.subscribe(() => setTick((n) => n + 1)), [observable]);
  return observable;
}

/** The current time, refreshed every `everyMs`, for ages and durations that keep counting. */
export function useNow(everyMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}
