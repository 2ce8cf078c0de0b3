import assert from 'node:assert/strict';
import { parseCpuNanos, parseMemoryBytes } from '../../src/model/quantity';

describe('resource quantities', () => {
  describe('parseMemoryBytes', () => {
    const cases: [string, number][] = [
      ['1048576', 1048576],
      ['256Mi', 256 * 2 ** 20],
      ['1Gi', 2 ** 30],
      ['1.5Gi', 1.5 * 2 ** 30],
      ['16Ki', 16 * 1024],
      ['500M', 500e6],
      ['1G', 1e9],
      ['64k', 64e3],
      ['64K', 64e3],
      ['129e6', 129e6],
      ['0.5Ki', 512],
      [' 2Mi ', 2 * 2 ** 20],
    ];
    for (const [input, bytes] of cases) {
      it(`reads "${input}" as ${bytes} bytes`, () => {
        assert.equal(parseMemoryBytes(input), bytes);
      });
    }

    it('rounds a fractional byte count up', () => {
      assert.equal(parseMemoryBytes('1.5'), 2);
    });

    for (const bad of ['', 'abc', '256MB', '256mi', '-1Mi', '0', '0Mi', '1.2.3G', 'Mi', '100m', '1 Gi']) {
      it(`refuses "${bad}" with the rule`, () => {
        assert.throws(() => parseMemoryBytes(bad), {
          name: 'Error',
          message: new RegExp(
            `^memory quantity "${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" must be a positive number of bytes with an optional suffix Ki, Mi`,
          ),
        });
      });
    }
  });

  describe('parseCpuNanos', () => {
    const cases: [string, number][] = [
      ['2', 2e9],
      ['0.5', 5e8],
      ['.25', 25e7],
      ['500m', 5e8],
      ['1500m', 15e8],
      ['1m', 1e6],
    ];
    for (const [input, nanos] of cases) {
      it(`reads "${input}" as ${nanos} nano-CPUs`, () => {
        assert.equal(parseCpuNanos(input), nanos);
      });
    }

    for (const bad of ['', 'two', '0', '0m', '-1', '500M', '1.5.0', 'm', '2 cpus']) {
      it(`refuses "${bad}" with the rule`, () => {
        assert.throws(() => parseCpuNanos(bad), {
          name: 'Error',
          message: `cpu quantity "${bad}" must be a positive number of CPUs, as a decimal ("0.5", "2") or in millicores ("500m")`,
        });
      });
    }
  });
});
