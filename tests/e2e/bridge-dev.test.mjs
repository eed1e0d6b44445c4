// `flexbridge dev` restarted on the same database: without a seed each run
// is a new emulator account (its SIDs never repeat the last run's), and it
// prints the account SID and auth token an operator needs for `doctor` and
// `provision`, the ones the emulator really takes.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { requestJson, spawnService } from './lib/harness.mjs';

const ACCOUNT_LINE = /TWILIO_ACCOUNT_SID=(AC[0-9a-f]{32}) TWILIO_AUTH_TOKEN=(\S+) TWILIO_API_BASE=(http:\/\/\S+)/;

/** One `flexbridge dev` run: the credentials it printed, checked against its emulator. */
async function devRun(database, extraArgs = []) {
  const dev = await spawnService({
    binary: 'flexbridge',
    service: 'flexbridge',
    args: ['dev', '--port', '0', '--emulator-port', '0', '--database-url', database, ...extraArgs],
  });
  try {
    const deadline = Date.now() + 10_000;
    let match;
    while (!(match = dev.stdout.map((line) => ACCOUNT_LINE.exec(line)).find(Boolean))) {
      assert.ok(Date.now() < deadline, `no account line in:\n${dev.stdout.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const [, accountSid, authToken, apiBase] = match;
    const basic = Buffer.from(`${accountSid}:${authToken}`).toString('base64');
    const flows = await requestJson('GET', `${apiBase}/v1/FlexFlows`, undefined, { authorization: `Basic ${basic}` });
    assert.ok(Array.isArray(flows.flex_flows), 'the printed credentials open the emulator');
    return { accountSid, authToken };
  } finally {
    await dev.stop();
  }
}

test('dev restarted on one database is a new emulator account each run and prints its credentials', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flexbridge-dev-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const database = `sqlite://${path.join(dir, 'dev.db')}`;
  const first = await devRun(database);
  const second = await devRun(database);
  assert.notEqual(first.accountSid, second.accountSid);
  assert.notEqual(first.authToken, second.authToken);
  const seeded = await devRun(database, ['--seed', '7']);
  assert.deepEqual(await devRun(database, ['--seed', '7']), seeded, 'a seed repeats its account');
});
