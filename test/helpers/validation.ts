import assert from 'node:assert/strict';
import { ValidationError } from '../../src/errors';

/** The problems of the ValidationError FN throws; fails when it throws anything else, or nothing. */
export function problemsOf(fn: () => unknown): { field: string; reason: string; line?: number; column?: number }[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
    return err.details;
  }
  assert.fail('expected a ValidationError');
}
