import assert from 'node:assert/strict';
import { LogFrameDecoder } from '../../src/executors/docker/log-frames';

const header = (stream: 1 | 2, length: number): Buffer => {
  const bytes = Buffer.alloc(8);
  bytes.writeUInt8(stream, 0);
  bytes.writeUInt32BE(length, 4);
  return bytes;
};

describe('Docker log frames', () => {
  it('passes a long frame on piece by piece, before the rest of it has come', () => {
    const decoder = new LogFrameDecoder();
    const out: Buffer[] = [];
    decoder.on('data', (chunk: Buffer) => out.push(chunk));
    decoder.write(Buffer.concat([header(1, 1_000_000), Buffer.alloc(65_536, 'a')]));
    assert.equal(Buffer.concat(out).length, 65_536, 'the first piece is out while 934 464 bytes of its frame are still to come');
    decoder.write(Buffer.alloc(1_000_000 - 65_536, 'b'));
    decoder.write(Buffer.concat([header(2, 3), Buffer.from('end')]));
    decoder.end();
    const text = Buffer.concat(out).toString();
    assert.equal(text.length, 1_000_003);
    assert.ok(text.endsWith('bend'));
  });

  it('shows a short unframed output instead of dropping it', async () => {
    const decoder = new LogFrameDecoder();
    decoder.setEncoding('utf8');
    decoder.end(Buffer.from('hi\n'));
    let text = '';
    for await (const chunk of decoder) text += chunk;
    assert.equal(text, 'hi\n');
  });
});
