import { Observable } from './observable';

const TOKEN_KEY = 'berth.token';

/**
 * The bearer token for this browser session. It lives in sessionStorage: it
 * survives a reload but not closing the tab, and no other site can read it.
 * A 401 forgets it and asks again; each new token starts a new generation, so
 * views and the event stream start over with it.
 */
class Session extends Observable {
  token: string | null = readToken();
  /** Why the token is asked for, while the prompt is shown. */
  prompt: string | null = null;
  generation = 0;

  /** A 401: forget the token and show the prompt with the server's reason. */
  askForToken(reason: string): void {
    if (this.prompt !== null) return;
    this.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    this.prompt = reason;
    this.changed();
  }

  useToken(token: string): void {
    this.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    this.prompt = null;
    this.generation++;
    this.changed();
  }

  /** Forget the token: the next request that needs one brings the prompt back. */
  signOut(): void {
    this.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    this.generation++;
    this.changed();
  }
}

function readToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export const session = new Session();
