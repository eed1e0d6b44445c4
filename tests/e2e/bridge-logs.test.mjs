// What the bridge's logs may hold, read from the real process's stderr:
// a customer's resume token never, at any level (RUST_LOG=trace); message
// bodies, either way, not below TRACE (RUST_LOG=debug); and with
// LOG_FORMAT=json every line is a JSON object whose conversation and
// customer ids are fields.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { flexbridgeFor } from './lib/bridge.mjs';

/** A chat with everything that could leak: a token connect, a customer message, an agent reply. */
async function chatWithSecrets(world) {
  const first = await world.customer('Nia');
  const customer = await world.reconnect(first);
  const sent = await customer.send('customer body 5e1f');
  assert.equal((await customer.delivered(sent.clientMessageId)).status, 'delivered');
  const channel = await world.flex.channelWith('customer body 5e1f');
  const agent = await world.flex.acceptChat(channel.sid);
  await agent.say('agent body 9c2d');
  await customer.agentMessage('agent body 9c2d');
  return { customer, channel };
}

for (const backend of ['conversations', 'chat']) {
  describe(`${backend} backend`, () => {
    test('a resume token never appears in the logs, even at RUST_LOG=trace', async (t) => {
      const world = await flexbridgeFor(t, { backend, bridgeEnv: { RUST_LOG: 'trace' }, keepStderr: true });
      const { customer } = await chatWithSecrets(world);

      const logs = world.bridge.process.stderrAll();

      assert.ok(logs.length > 0);
      assert.ok(!logs.includes(customer.token), 'the token is in the logs');
    });

    test('message bodies stay out of the logs at RUST_LOG=debug', async (t) => {
      const world = await flexbridgeFor(t, { backend, bridgeEnv: { RUST_LOG: 'debug' }, keepStderr: true });
      await chatWithSecrets(world);

      const logs = world.bridge.process.stderrAll();

      for (const body of ['customer body 5e1f', 'agent body 9c2d']) {
        assert.ok(!logs.includes(body), `${body} is in the logs`);
      }
    });
  });
}

test('LOG_FORMAT=json writes one JSON object per line, with the conversation and customer as fields', async (t) => {
  const world = await flexbridgeFor(t, { backend: 'conversations', bridgeEnv: { LOG_FORMAT: 'json' }, keepStderr: true });
  const { customer } = await chatWithSecrets(world);

  const lines = world.bridge.process.stderrAll().split('\n').filter((line) => line.trim() !== '');

  assert.ok(lines.length > 0);
  const records = lines.map((line) => {
    try {
      return JSON.parse(line);
    } catch {
      assert.fail(`not JSON: ${line}`);
    }
  });
  const opened = records.find((r) => r.fields?.customer === customer.id && typeof r.fields?.conversation === 'string');
  assert.ok(opened, `no line names customer ${customer.id} and a conversation as fields:\n${lines.join('\n')}`);
  assert.ok(records.every((r) => typeof r.level === 'string' && typeof r.timestamp === 'string'));
});
