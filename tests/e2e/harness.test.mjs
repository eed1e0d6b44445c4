// The harness itself: the other suites trust it to start, stop and listen.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import twilio from 'twilio';

import { startEmulator, webhookReceiverFor } from './lib/harness.mjs';

test('an emulator that cannot start is reported with its own error output', async () => {
  await assert.rejects(startEmulator({ extraArgs: ['--no-such-flag'] }), (err) => {
    assert.match(err.message, /exited \(code \d+, signal null\) before listening/);
    assert.match(err.message, /--no-such-flag/, 'the emulator stderr is in the message');
    return true;
  });
});

test('stop() ends the emulator and its port stops answering', async () => {
  const emulator = await startEmulator({ agents: 1, seed: 1 });
  assert.match(emulator.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(emulator.process.running(), true);
  assert.match(emulator.credentials.accountSid, /^AC[0-9a-fA-F]{32}$/);
  await emulator.stop();
  assert.equal(emulator.process.running(), false);
  await assert.rejects(fetch(`${emulator.url}/_emulator/state`));
  await emulator.stop();
});

test('the webhook receiver records form posts and checks them with twilio.validateRequest', async (t) => {
  const receiver = await webhookReceiverFor(t, { path: '/hooks?tenant=a' });
  const params = { EventType: 'onMessageSent', Body: 'Hi & bye = ok', 'Configuration.Filters': ['b', 'a'] };
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const v of [value].flat()) form.append(name, v);
  }
  const signature = twilio.getExpectedTwilioSignature('token-1', receiver.url, params);
  const response = await fetch(receiver.url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': signature },
    body: form,
  });
  assert.equal(response.status, 200);

  const [request] = receiver.requests;
  assert.equal(request.url, receiver.url);
  assert.deepEqual(request.params, params);
  assert.deepEqual(receiver.invalid('token-1'), []);
  assert.deepEqual(receiver.invalid('token-2'), [request]);
});
