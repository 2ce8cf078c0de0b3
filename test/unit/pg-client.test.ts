import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

describe('pg, for the PostgreSQL connections berth opens itself', () => {
  it('is not loaded with the server (a store on SQLite never needs it), and is loaded by the first pgClient()', () => {
    const server = path.join(__dirname, '../../src/server');
    const pgClient = path.join(__dirname, '../../src/store/pg-client');
    const script = `
      require(${JSON.stringify(server)});
      const loaded = () => Object.keys(require.cache).some((file) => /node_modules\\/pg\\//.test(file));
      const before = loaded();
      const Client = require(${JSON.stringify(pgClient)}).pgClient();
      console.log(JSON.stringify({ before, after: loaded(), client: Client === require('pg').Client }));`;
    const seen = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: path.join(__dirname, '../../..') }));
    assert.deepEqual(seen, { before: false, after: true, client: true });
  });
});
