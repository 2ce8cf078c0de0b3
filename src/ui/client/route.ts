import { useEffect, useState } from 'preact/hooks';

/** The page's views, addressed by the URL's fragment so every view can be linked to and reloaded. */
export type Route =
  | { view: 'apps' }
  | { view: 'app'; app: string }
  | { view: 'run'; app: string; run: string }
  | { view: 'sources' }
  | { view: 'missing'; hash: string };

export const href = {
  apps: (): string => '#/apps',
  app: (app: string): string => `#/apps/${encodeURIComponent(app)}`,
  run: (app: string, run: string | number): string => `#/apps/${encodeURIComponent(app)}/runs/${encodeURIComponent(String(run))}`,
  sources: (): string => '#/sources',
};

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0 || (parts.length === 1 && parts[0] === 'apps')) return { view: 'apps' };
  if (parts[0] === 'apps' && parts.length === 2) return { view: 'app', app: parts[1] };
  if (parts[0] === 'apps' && parts.length === 4 && parts[2] === 'runs') return { view: 'run', app: parts[1], run: parts[3] };
  if (parts.length === 1 && parts[0] === 'sources') return { view: 'sources' };
  return { view: 'missing', hash };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = (): void => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}

export function go(to: string): void {
  location.hash = to;
}
