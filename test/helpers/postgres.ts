/** PostgreSQL for the tests: a database of its own per test, and one-off statements. */
import { POSTGRES_URL, uniqueName } from './fixtures';

/** The part of pg's Client used here (pg ships no types). */
interface PgClient {
  connect(): Promise<void>;
  query<R = unknown>(sql: string, values?: unknown[]): Promise<{ rows: R[] }>;
  end(): Promise<void>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Client } = require('pg') as { Client: new (config: { connectionString: string }) => PgClient };

/** One statement on a connection of its own. */
export async function query<R = unknown>(url: string, sql: string, values: unknown[] = []): Promise<R[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** A PostgreSQL database of its own, dropped by `drop`. */
export async function createDatabase(prefix = 'berth_t'): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = uniqueName(prefix).replace(/-/g, '_');
  await query(POSTGRES_URL, `CREATE DATABASE ${name}`);
  const url = POSTGRES_URL.replace(/\/[^/]+$/, `/${name}`);
  return { url, name, drop: () => query(POSTGRES_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => undefined) };
}
