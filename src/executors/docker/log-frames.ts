/**
 * Docker's multiplexed log stream, unwrapped. Without a TTY the engine sends
 * stdout and stderr as frames: an 8-byte header (stream type, three zero
 * bytes, a big-endian payload length) then the payload. Frames arrive in the
 * order the container wrote them, so emitting payloads as they come keeps
 * stdout and stderr interleaved as they happened.
 *
 * Not dockerode's `modem.demuxStream`: it writes to its outputs without
 * waiting for them (a slow reader piles the output up in memory) and joins
 * every chunk to what it holds before reading a frame.
 */

import { Transform, type TransformCallback } from 'node:stream';

const HEADER_BYTES = 8;
const STDIN = 0;
const STDERR = 2;
const EMPTY = Buffer.alloc(0);

/**
 * A Transform from Docker's framed log stream to the plain bytes of stdout
 * and stderr. A payload passes on piece by piece as it arrives, so nothing
 * is held but a header split across two chunks, however long the frame.
 */
export class LogFrameDecoder extends Transform {
  /** The start of a header whose rest is in the next chunk. */
  private header: Buffer = EMPTY;
  /** Payload bytes of the current frame still to come. */
  private remaining = 0;
  /** Set once the input turns out not to be framed (a TTY container); the rest passes through unchanged. */
  private raw = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.raw) {
      callback(null, chunk);
      return;
    }
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const end = Math.min(chunk.length, offset + this.remaining);
        this.push(chunk.subarray(offset, end));
        this.remaining -= end - offset;
        offset = end;
        continue;
      }
      const piece = chunk.subarray(offset, offset + HEADER_BYTES - this.header.length);
      offset += piece.length;
      this.header = this.header.length > 0 ? Buffer.concat([this.header, piece]) : piece;
      if (this.header.length < HEADER_BYTES) break;
      if (!looksLikeHeader(this.header)) {
        this.raw = true;
        this.push(Buffer.concat([this.header, chunk.subarray(offset)]));
        this.header = EMPTY;
        break;
      }
      this.remaining = this.header.readUInt32BE(4);
      this.header = EMPTY;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    // A few bytes that cannot start a header are a short unframed output, better shown than dropped.
    if (this.header.length > 0 && !looksLikeHeader(this.header)) this.push(this.header);
    callback();
  }
}

/** Whether `bytes` (a header, or the start of one) has a stream type and the three zero bytes after it. */
function looksLikeHeader(bytes: Buffer): boolean {
  if (bytes[0] < STDIN || bytes[0] > STDERR) return false;
  for (let i = 1; i < Math.min(4, bytes.length); i++) if (bytes[i] !== 0) return false;
  return true;
}
