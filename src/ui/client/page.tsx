/**
 * berth's web page: Apps, their runs and logs, and the apps folder's sync
 * status, kept current from `/events/`. A client of the public API only.
 */
import { render } from 'preact';
import { useEffect } from 'preact/hooks';
import { live } from './live';
import { useObservable } from './observable';
import { href, useRoute, type Route } from './route';
import { session } from './session';
import { AppView } from './views/app';
import { AppsView } from './views/apps';
import { Problem } from './views/common';
import { RunView } from './views/run';
import { SourcesView } from './views/sources';
import { TokenPrompt } from './views/token-prompt';

function Page() {
  useObservable(session);
  useObservable(live);
  const route = useRoute();
  useEffect(() => live.start(), [session.generation]);

  return (
    <>
      <header>
        <a class="brand" href={href.apps()}>
          berth
        </a>
        <nav>
          <a href={href.apps()} class={route.view === 'apps' || route.view === 'app' || route.view === 'run' ? 'current' : ''}>
            Apps
          </a>
          <a href={href.sources()} class={route.view === 'sources' ? 'current' : ''}>
            Sources
          </a>
        </nav>
        <span class={`connection connection-${live.connection}`} data-testid="connection" title={live.error ?? ''}>
          {live.connection}
        </span>
        {session.token && (
          <button type="button" class="link" onClick={() => session.signOut()}>
            Forget token
          </button>
        )}
      </header>
      <main key={session.generation}>
        {live.error && <Problem>{live.error}</Problem>}
        <View route={route} />
      </main>
      {session.prompt !== null && <TokenPrompt reason={session.prompt} />}
    </>
  );
}

function View({ route }: { route: Route }) {
  switch (route.view) {
    case 'apps':
      return <AppsView />;
    case 'app':
      return <AppView key={route.app} name={route.app} />;
    case 'run':
      return <RunView key={`${route.app}/${route.run}`} app={route.app} run={route.run} />;
    case 'sources':
      return <SourcesView />;
    case 'missing':
      return (
        <Problem>
          Nothing at <code>{route.hash}</code>. <a href={href.apps()}>All Apps</a>
        </Problem>
      );
  }
}

render(<Page />, document.getElementById('root')!);
