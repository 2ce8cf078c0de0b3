import { useState } from 'preact/hooks';
import { session } from '../session';

/** Asks for the API token; shown when a request answered 401, with the server's reason. */
export function TokenPrompt({ reason }: { reason: string }) {
  const [token, setToken] = useState('');
  const submit = (e: Event): void => {
    e.preventDefault();
    if (token.trim()) session.useToken(token.trim());
  };
  return (
    <div class="overlay">
      <form class="dialog" onSubmit={submit} aria-labelledby="token-title">
        <h2 id="token-title">Token needed</h2>
        <p>
          This berth asks for its API token (<code>BERTH_TOKEN</code>). It is kept in this tab until you close it and sent with each request.
        </p>
        <p class="muted" data-testid="token-reason">
          The server said: {reason}
        </p>
        <input
          type="password"
          name="token"
          aria-label="API token"
          autocomplete="off"
          // biome-ignore lint/a11y/noAutofocus: the prompt replaces the whole page and the token is the only thing to type
          autoFocus
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <button type="submit" class="primary">
          Use token
        </button>
      </form>
    </div>
  );
}
