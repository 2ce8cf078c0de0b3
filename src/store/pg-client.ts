/**
 * pg's Client, for the PostgreSQL connections berth opens itself (the change
 * feed's LISTEN, the advisory-lock election), loaded when the first is made:
 * on SQLite nothing needs pg, and loading it costs about 2 MB of heap and
 * 4 MB of RSS. pg ships no types of its own, so each caller names the part of
 * the Client it uses; node keeps the module once loaded.
 */
export function pgClient<Options, Connection>(): new (options: Options) => Connection {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('pg') as { Client: new (options: Options) => Connection }).Client;
}
