// Nothing acknowledged is lost or doubled, once per backend: through Flex
// answering 500 and 429 for a while (the emulator's HTTP faults on the
// message-create route), and through the bridge being killed with SIGKILL
// while messages wait in its outbox and restarted on the same database.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { flexbridgeFor } from './lib/bridge.mjs';
import { BACKENDS, waitFor } from './lib/harness.mjs';

/** These customers send faster than the bridge's default limit (20, then 5/s). */
const FAST = { burst: 100, perSecond: 100 };

/** Sends every body at once (the bridge handles one socket's events in order) and returns the acks. */
async function sendAll(customer, bodies) {
  const acks = await Promise.all(bodies.map((body) => customer.send(body)));
  const seqs = acks.map((ack) => ack.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'acked in the order sent');
  return acks;
}

/** A customer whose chat is open in Flex (first message delivered). */
async function openChat(world, name) {
  const customer = await world.customer(name);
  const opening = await customer.send(`${name} opens the chat`);
  assert.equal((await customer.delivered(opening.clientMessageId)).status, 'delivered');
  const channel = await world.flex.channelWith(`${name} opens the chat`);
  return { customer, channel, opening };
}

for (const backend of BACKENDS) {
  describe(`${backend} backend`, () => {
    test('through 500s and 429s every acknowledged message reaches the agent exactly once and in order', async (t) => {
      const world = await flexbridgeFor(t, { backend, rateLimit: FAST });
      const { flex } = world;
      const { customer: ida, channel } = await openChat(world, 'Ida');
      const path = flex.profile.messageCreatePath;
      await flex.api.faults.http({ method: 'POST', path, kind: 'error', status: 500, lands: false, count: 3 });
      await flex.api.faults.http({ method: 'POST', path, kind: 'rate_limit', retry_after: 1, count: 2 });
      await flex.api.faults.http({ method: 'POST', path, kind: 'error', status: 503, lands: false, count: 1 });

      const bodies = Array.from({ length: 10 }, (_, i) => `Message ${i + 1} of 10`);
      const acks = await sendAll(ida, bodies);

      for (const ack of acks) {
        assert.equal((await ida.delivered(ack.clientMessageId, { timeout: 60_000 })).status, 'delivered');
      }
      assert.deepEqual(await flex.customerBodies(channel.sid), ['Ida opens the chat', ...bodies]);
      assert.deepEqual(await flex.api.faults.list(), { http: [], webhooks: [] }, 'Flex did refuse them: every fault was used');
      assert.equal((await flex.channels()).length, 1);
    });

    test('a message create that lands in Flex but answers 500 is not sent twice', async (t) => {
      const world = await flexbridgeFor(t, { backend, rateLimit: FAST });
      const { flex } = world;
      const { customer: jo, channel } = await openChat(world, 'Jo');
      const path = flex.profile.messageCreatePath;
      await flex.api.faults.http({ method: 'POST', path, kind: 'error', status: 500, lands: true, count: 3 });

      const bodies = Array.from({ length: 5 }, (_, i) => `Landed ${i + 1} of 5`);
      const acks = await sendAll(jo, bodies);

      for (const ack of acks) {
        assert.equal((await jo.delivered(ack.clientMessageId, { timeout: 60_000 })).status, 'delivered');
      }
      assert.deepEqual(await flex.customerBodies(channel.sid), ['Jo opens the chat', ...bodies]);
      assert.deepEqual(await flex.api.faults.list(), { http: [], webhooks: [] }, 'every fault was used');
    });

    test('killed with SIGKILL mid-conversation and restarted, the bridge continues on the same channel and loses nothing acknowledged', async (t) => {
      const world = await flexbridgeFor(t, { backend, agents: 1, rateLimit: FAST });
      const { bridge, flex } = world;
      const { customer: kai, channel, opening } = await openChat(world, 'Kai');
      const agent = await flex.acceptChat(channel.sid);
      await agent.say('Hi Kai, how can I help?');
      await kai.agentMessage('Hi Kai, how can I help?');

      // Flex gets slow: the next message lands but its answer is held back,
      // so what follows waits in the bridge's outbox.
      const path = flex.profile.messageCreatePath;
      await flex.api.faults.http({ method: 'POST', path, kind: 'delay', delay_ms: 60_000, count: 1 });
      const bodies = ['In flight 1', 'In flight 2', 'In flight 3', 'In flight 4'];
      const acks = await sendAll(kai, bodies);
      await waitFor(async () => (await flex.customerBodies(channel.sid)).includes('In flight 1'));
      const deliveredBeforeCrash = kai.received('delivery').map((d) => d.clientMessageId);
      assert.ok(
        acks.every((ack) => !deliveredBeforeCrash.includes(ack.clientMessageId)),
        'all four were still in the outbox when the bridge died',
      );

      const lastSeq = kai.lastSeq();
      await bridge.kill('SIGKILL');
      await kai.next('disconnect');
      // While the bridge is down the agent writes (Flex's webhooks to it fail).
      await agent.say('Are you still there?');

      await bridge.restart();
      const back = await world.reconnect(kai, { lastSeq });

      await back.agentMessage('Are you still there?');
      const after = await back.send('Yes, I am back');
      assert.equal(after.conversationId, opening.conversationId, 'the same conversation');
      await agent.say('Welcome back');
      await back.agentMessage('Welcome back');
      await flex.customerMessagesArrived(['Yes, I am back']);

      // Flex: one channel, one task, each acknowledged message exactly once, in order.
      assert.deepEqual(await flex.customerBodies(channel.sid), ['Kai opens the chat', ...bodies, 'Yes, I am back']);
      const { channels, tasks } = await flex.view();
      assert.deepEqual(channels.map((c) => c.sid), [channel.sid], 'the same channel');
      assert.deepEqual(tasks.map((task) => task.channelSid), [channel.sid], 'the same task');
      // The customer: everything once, in order.
      const history = await back.history();
      assert.deepEqual(
        history.map(({ direction, body }) => [direction, body]),
        [
          ['customer', 'Kai opens the chat'],
          ['agent', 'Hi Kai, how can I help?'],
          ...bodies.map((body) => ['customer', body]),
          ['agent', 'Are you still there?'],
          ['customer', 'Yes, I am back'],
          ['agent', 'Welcome back'],
        ],
      );
      assert.deepEqual(back.agentBodies(), ['Are you still there?', 'Welcome back'], 'resumed after lastSeq, nothing twice');
    });
  });
}
