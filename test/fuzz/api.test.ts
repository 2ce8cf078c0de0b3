import assert from 'node:assert/strict';
import fc from 'fast-check';
import { handlerRequest, hostileRequest } from './requests';
import { announceSeed, fuzzParameters } from './settings';
import { startFuzzTarget, type FuzzTarget, type RawAnswer, type RawRequest } from './target';

/**
 * Every endpoint, fed arbitrary requests: never a 5xx, never a hang, the
 * server still answers /healthz after each, and a refused request (4xx)
 * changes nothing a client can read (apps, runs, the folder's report).
 */
describe('fuzz: the API', function () {
  this.timeout(0);
  let target: FuzzTarget;
  /** The store as of the last request that was not refused. */
  let known: string;

  before(async () => {
    target = await startFuzzTarget();
    known = await target.snapshot();
  });
  after(async () => {
    await target?.close();
  });

  async function check(request: RawRequest): Promise<void> {
    let answer: RawAnswer;
    try {
      answer = await target.send(request);
    } catch (err) {
      assert.fail(`${show(request)}: ${(err as Error).message}`);
    }
    assert.ok(answer.status < 500, `${show(request)} answered ${answer.status}: ${answer.body.slice(0, 500)}\nserver log:\n${lastErrors(target)}`);
    assert.ok(await target.healthy(), `after ${show(request)}, /healthz does not answer 200`);
    const now = await target.snapshot();
    if (answer.status >= 400) {
      assert.equal(now, known, `${show(request)} was refused with ${answer.status} yet changed what the API lists`);
    }
    known = now;
  }

  it('answers any request, through the Host, Origin, token and content-type guards, without a 5xx or a change when it refuses', async () => {
    const parameters = fuzzParameters<[RawRequest]>(200, 20_000);
    announceSeed('the API with any request', parameters);
    await fc.assert(fc.asyncProperty(hostileRequest(target.port), check), parameters);
  });

  it('answers writes that pass every guard, with hostile bodies, without a 5xx or a change when it refuses', async () => {
    const parameters = fuzzParameters<[RawRequest]>(200, 20_000);
    announceSeed('the API handlers behind the guards', parameters);
    await fc.assert(fc.asyncProperty(handlerRequest(target.port), check), parameters);
  });
});

/** The server's last few logged errors, each cut short: their messages say enough to find the fault. */
function lastErrors(target: FuzzTarget): string {
  return target
    .errors()
    .slice(-3)
    .map((line) => line.slice(0, 600))
    .join('\n');
}

function show(request: RawRequest): string {
  const body = request.body.toString('utf8');
  return `${request.method} ${JSON.stringify(request.target)} ${JSON.stringify(request.headers)} body(${request.body.length})=${JSON.stringify(body.slice(0, 200))}`;
}
