/**
 * Which failures of the database mean "the store is unavailable for now"
 * (a full disk, a PostgreSQL that restarts or cannot be reached) rather than
 * a fault of berth: the API answers those 503 with the reason, not 500.
 */
import { ConnectionError } from 'sequelize';
import { StoreUnavailableError } from '../errors';

/** SQLite result codes of a disk or file that cannot take writes now. */
const SQLITE_UNAVAILABLE = new Set(['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_BUSY']);

/**
 * PostgreSQL SQLSTATE classes and codes of a server going away or refusing
 * work for now: 08 connection exception, 53 insufficient resources (53100 is
 * disk full), 57P01-57P03 shutdown and "cannot connect now" (starting up).
 */
const PG_UNAVAILABLE = /^(08|53|57P0[123])/;

/** node-postgres' own words for a connection that broke under a query (it sets no code). */
const PG_CONNECTION_LOST = /Connection terminated|connection (is )?(closed|not open)|ECONNREFUSED|ECONNRESET|terminating connection/i;

/** A StoreUnavailableError for `thrown` when it is such a failure; otherwise undefined. */
export function storeUnavailable(thrown: unknown): StoreUnavailableError | undefined {
  if (!(thrown instanceof Error)) return undefined;
  const cause = (thrown as { parent?: unknown }).parent ?? (thrown as { original?: unknown }).original;
  const code = String((cause as { code?: unknown } | undefined)?.code ?? (thrown as { code?: unknown }).code ?? '');
  const message = cause instanceof Error ? cause.message : thrown.message;
  const unavailable =
    thrown instanceof ConnectionError ||
    SQLITE_UNAVAILABLE.has(code) ||
    PG_UNAVAILABLE.test(code) ||
    (thrown.name.startsWith('Sequelize') && PG_CONNECTION_LOST.test(message));
  return unavailable ? new StoreUnavailableError(`the store is unavailable: ${message}`) : undefined;
}
