import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { incompleteNote, LogReadTimeoutError, readTail, TailBuffer, withIncompleteNote } from '../../src/controller/run-logs';

describe("reading a run's output", () => {
  it('keeps the newest bytes of text and buffers alike, counting multi-byte characters as bytes', () => {
    const tail = new TailBuffer(6);
    for (const chunk of ['abc', Buffer.from('def'), 'g€', 'h']) tail.push(chunk);
    assert.equal(tail.bytesSeen, 11);
    assert.deepEqual(tail.result(), { text: 'fg€h', droppedBytes: 5 });
  });

  it('stops a read that outlasts its deadline with LogReadTimeoutError, holding the tail of what came', async () => {
    // Output that keeps coming, slowly: the read can only end by its deadline.
    const stream = new PassThrough();
    stream.write('first part\n');
    stream.write('second part\n');
    const reading = readTail(stream, 12, 100);
    await assert.rejects(reading, (error: unknown) => {
      assert.ok(error instanceof LogReadTimeoutError);
      assert.equal(error.code, 'LogReadTimeout');
      assert.equal(error.message, 'reading the output took longer than 100 ms; the copy stops after 23 bytes');
      assert.deepEqual(error.partial, { text: 'second part\n', droppedBytes: 11 });
      return true;
    });
    assert.ok(stream.destroyed, 'the stream (and with it the runtime connection) is closed');
  });

  it("passes on a stream's own error as it is", async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('the engine went away'));
      },
    });
    await assert.rejects(readTail(failing, 10, 10_000), /the engine went away/);
  });

  it('closes incomplete output with a line that says why, on a line of its own', () => {
    assert.deepEqual(withIncompleteNote({ text: 'cut mid-li', droppedBytes: 3 }, 'too slow'), {
      text: `cut mid-li\n${incompleteNote('too slow')}`,
      droppedBytes: 3,
    });
    assert.equal(withIncompleteNote({ text: 'whole\n', droppedBytes: 0 }, 'x').text, `whole\n${incompleteNote('x')}`);
  });
});
