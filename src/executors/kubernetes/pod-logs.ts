/**
 * A pod's log, from `GET /api/v1/namespaces/{ns}/pods/{pod}/log`: the
 * container's stdout and stderr interleaved as the kubelet recorded them,
 * streamed as it comes.
 *
 * Not client-node's `Log`: it reports every failure to connect as an HTTP
 * 500 and drops the API server's message on any other status, so an API
 * server that is down could not be told from one that refused, nor "pod not
 * found" from "container not started". This is the same request, with the
 * client's own credentials (`applyToHTTPSOptions`), and its errors kept.
 */

import type { KubeConfig } from '@kubernetes/client-node';
import http from 'node:http';
import https from 'node:https';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

export interface PodLogRequest {
  namespace: string;
  pod: string;
  container: string;
  follow: boolean;
  tailLines?: number;
  /**
   * The API server's `limitBytes`: it stops after that many bytes of what
   * `tailLines` selected (counted from the start of them, not the end). When
   * it does, a closing line says the output is cut.
   */
  limitBytes?: number;
  /** How long the API server may take to start answering. A followed log may then run for as long as its container does. */
  timeoutMs: number;
}

/** An API server answer other than 200, shaped like client-node's ApiException (`code`, `body`) so one mapping reads both. */
export class LogRequestError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
  ) {
    super(`HTTP ${code}`);
    this.name = 'LogRequestError';
  }
}

/** A failure to connect or to hear back in time, with the socket error's `code` kept for isUnreachable. */
class LogConnectionError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = code === 'ETIMEDOUT' ? 'TimeoutError' : 'LogConnectionError';
  }
}

/**
 * Opens the log. Resolves with a stream of its text once the API server has
 * answered 200; the stream ends when the log does (at once without
 * `follow`, when the container ends with it) and fails with the connection's
 * error if that breaks off.
 *
 * @throws LogRequestError for any other answer, with the server's body.
 * @throws Error with a socket error `code` when the server cannot be reached in time.
 */
export async function openPodLog(kubeConfig: KubeConfig, request: PodLogRequest): Promise<Readable> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the Kubernetes configuration has no current cluster');
  const url = new URL(
    `${cluster.server.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(request.namespace)}/pods/${encodeURIComponent(request.pod)}/log`,
  );
  url.searchParams.set('container', request.container);
  if (request.follow) url.searchParams.set('follow', 'true');
  if (request.tailLines !== undefined) url.searchParams.set('tailLines', String(request.tailLines));
  if (request.limitBytes !== undefined) url.searchParams.set('limitBytes', String(request.limitBytes));
  const options: https.RequestOptions = { method: 'GET', headers: {} };
  await kubeConfig.applyToHTTPSOptions(options);
  const send = url.protocol === 'http:' ? http.request : https.request;

  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const outgoing = send(url, options, resolve);
    const timer = setTimeout(() => outgoing.destroy(new LogConnectionError(`no answer within ${request.timeoutMs} ms`, 'ETIMEDOUT')), request.timeoutMs);
    outgoing.once('response', () => clearTimeout(timer));
    outgoing.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(error instanceof LogConnectionError ? error : new LogConnectionError(error.message, error.code));
    });
    outgoing.end();
  });

  if (response.statusCode !== 200) {
    let body = '';
    response.setEncoding('utf8');
    for await (const chunk of response) body += chunk as string;
    throw new LogRequestError(response.statusCode ?? 0, body);
  }
  const text = new KubeletTrailerFilter();
  response.once('error', (error: NodeJS.ErrnoException) =>
    text.destroy(new LogConnectionError(`the log stream broke off: ${error.message}`, error.code ?? 'ECONNRESET')),
  );
  // `aborted`: the server went away mid-stream (Node then ends the response without an error of its own).
  response.once('aborted', () => text.destroy(new LogConnectionError('the log stream broke off: the API server closed the connection', 'ECONNRESET')));
  // A reader that goes away (a client closing a followed log) closes the connection too.
  text.once('close', () => response.destroy());
  if (request.limitBytes === undefined) {
    response.pipe(text);
    return text;
  }
  const limit = request.limitBytes;
  let received = 0;
  response.on('data', (chunk: Buffer) => (received += chunk.length));
  response.pipe(text, { end: false });
  response.once('end', () => {
    if (received >= limit)
      text.write(`\n--- berth: output incomplete: the API server stopped the log after its limitBytes (${limit}); later lines are missing ---\n`);
    text.end();
  });
  return text;
}

/**
 * The kubelet (1.20, dockershim) reports a failure it meets while streaming
 * a log inside the 200 answer, after the output, with no newline:
 * `rpc error: code = Unknown desc = Error: No such container: …` when the
 * container was removed while a follow ran (a stopped pod). That is no
 * output of the run's. Holding back the last unterminated line until the end
 * lets it be dropped; everything else passes unchanged and in order.
 */
export class KubeletTrailerFilter extends Transform {
  private held = '';
  /** Keeps a character split across two chunks whole. */
  private readonly decoder = new StringDecoder('utf8');

  constructor() {
    super({ decodeStrings: false, encoding: 'utf8' });
  }

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    const text = this.held + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const newline = text.lastIndexOf('\n');
    this.held = text.slice(newline + 1);
    callback(null, newline >= 0 ? text.slice(0, newline + 1) : undefined);
  }

  override _flush(callback: TransformCallback): void {
    callback(null, (this.held + this.decoder.end()).replace(KUBELET_TRAILER, '') || undefined);
  }
}

const KUBELET_TRAILER = /rpc error: code = \w+ desc = [^\n]*$/;
