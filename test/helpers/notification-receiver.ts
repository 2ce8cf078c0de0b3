/** A webhook receiver on 127.0.0.1 for notification tests: records each request, answers as told. */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedNotification {
  headers: http.IncomingHttpHeaders;
  raw: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface Receiver {
  url: string;
  received: ReceivedNotification[];
  close(): Promise<void>;
}

/**
 * Answers each request with the next of `statuses` (the last one repeats);
 * `'hang'` never answers (until closed).
 */
export async function startReceiver(statuses: (number | 'hang')[] = [200]): Promise<Receiver> {
  const received: ReceivedNotification[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (raw += chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, raw, body: JSON.parse(raw) });
      const status = statuses[Math.min(received.length - 1, statuses.length - 1)];
      if (status === 'hang') return;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Checks a request's signature as a receiver should: HMAC-SHA256 of
 * `<X-Berth-Timestamp>.<raw body>`, compared in constant time, and a timestamp
 * within `toleranceSeconds` of now.
 */
export function signatureIsValid(request: ReceivedNotification, secret: string, toleranceSeconds = 300, nowMs = Date.now()): boolean {
  const timestamp = String(request.headers['x-berth-timestamp'] ?? '');
  const given = String(request.headers['x-berth-signature'] ?? '');
  if (!/^\d+$/.test(timestamp) || Math.abs(nowMs / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${request.raw}`).digest('hex')}`;
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}
