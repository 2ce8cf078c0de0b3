/**
 * Docker's multiplexed log stream, unwrapped. Without a TTY the engine sends
 * stdout and stderr as frames: an 8-byte header (stream type, three zero
 * bytes, a big-endian payload length) then the payload. Frames arrive in the
 * order the container wrote them, so emitting payloads as they come keeps
 * stdout and stderr interleaved as they happened.
 */

import { Transform, type TransformCallback } from 'node:stream';

const HEADER_BYTES = 8;
const STDIN = 0;
const STDERR = 2;

/** A Transform from Docker's framed log stream to the plain bytes of stdout and stderr. */
export class LogFrameDecoder extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  /** Set once the input turns out not to be framed (a TTY container); the rest passes through unchanged. */
  private raw = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.raw) {
      callback(null, chunk);
      return;
    }
    this.pending = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let offset = 0;
    while (this.pending.length - offset >= HEADER_BYTES) {
      const type = this.pending[offset];
      if (type < STDIN || type > STDERR || this.pending[offset + 1] !== 0 || this.pending[offset + 2] !== 0 || this.pending[offset + 3] !== 0) {
        this.raw = true;
        this.push(this.pending.subarray(offset));
        this.pending = Buffer.alloc(0);
        callback();
        return;
      }
      const length = this.pending.readUInt32BE(offset + 4);
      if (this.pending.length - offset - HEADER_BYTES < length) break;
      this.push(this.pending.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length));
      offset += HEADER_BYTES + length;
    }
    this.pending = this.pending.subarray(offset);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    // A truncated last frame (the engine went away mid-write) is better shown than dropped.
    if (this.pending.length > HEADER_BYTES) this.push(this.pending.subarray(HEADER_BYTES));
    callback();
  }
}
