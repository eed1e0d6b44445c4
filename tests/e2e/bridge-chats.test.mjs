// Customers and agents chatting through the real bridge (`flexbridge serve`)
// and the Flex emulator, once per backend: customers are the official
// `socket.io-client`, agents act through the emulator's control API, and
// what Flex holds is read from `GET /_emulator/state`.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { flexbridgeFor } from './lib/bridge.mjs';
import { BACKENDS, waitFor } from './lib/harness.mjs';

/** A message as the customer's history shows it. */
const customerSaid = (body) => ({ direction: 'customer', body });
const agentSaid = (body) => ({ direction: 'agent', body });
/** The direction and body of stored messages (the `history` ack), for exact comparisons. */
const said = (messages) => messages.map(({ direction, body }) => ({ direction, body }));

for (const backend of BACKENDS) {
  describe(`${backend} backend`, () => {
    test('two customers chat at once and each sees only their own agent’s replies', async (t) => {
      const { flex, customer } = await flexbridgeFor(t, { backend, agents: 2 });
      const [ada, bea] = await Promise.all([customer('Ada'), customer('Bea')]);

      await Promise.all([ada.send('Hi, this is Ada'), bea.send('Hi, this is Bea')]);
      const [adaChannel, beaChannel] = await Promise.all([
        flex.channelWith('Hi, this is Ada'),
        flex.channelWith('Hi, this is Bea'),
      ]);
      assert.notEqual(adaChannel.sid, beaChannel.sid, 'one Flex channel per customer');
      const [adasAgent, beasAgent] = await Promise.all([flex.acceptChat(adaChannel.sid), flex.acceptChat(beaChannel.sid)]);
      assert.notEqual(adasAgent.name, beasAgent.name, 'with a capacity of 1, each chat has its own agent');

      // Replies interleave, both customers keep talking.
      await adasAgent.say('Hello Ada, your parcel ships today');
      await beasAgent.say('Hello Bea, your refund is on its way');
      await Promise.all([ada.agentMessage('Hello Ada, your parcel ships today'), bea.agentMessage('Hello Bea, your refund is on its way')]);
      await Promise.all([ada.send('Thanks!'), bea.send('Great, thank you')]);
      await adasAgent.say('Anything else, Ada?');
      await beasAgent.say('Anything else, Bea?');
      await Promise.all([ada.agentMessage('Anything else, Ada?'), bea.agentMessage('Anything else, Bea?')]);

      // A `history` round trip after both last replies arrived: anything the
      // bridge had sent to the wrong socket would be in by now.
      const [adaHistory, beaHistory] = await Promise.all([ada.history(), bea.history()]);
      assert.deepEqual(said(adaHistory), [
        customerSaid('Hi, this is Ada'),
        agentSaid('Hello Ada, your parcel ships today'),
        customerSaid('Thanks!'),
        agentSaid('Anything else, Ada?'),
      ]);
      assert.deepEqual(said(beaHistory), [
        customerSaid('Hi, this is Bea'),
        agentSaid('Hello Bea, your refund is on its way'),
        customerSaid('Great, thank you'),
        agentSaid('Anything else, Bea?'),
      ]);
      assert.deepEqual(ada.agentBodies(), ['Hello Ada, your parcel ships today', 'Anything else, Ada?']);
      assert.deepEqual(bea.agentBodies(), ['Hello Bea, your refund is on its way', 'Anything else, Bea?']);
      assert.deepEqual(new Set(ada.transcript().filter((m) => m.direction === 'agent').map((m) => m.author)), new Set([adasAgent.name]));
      assert.deepEqual(new Set(bea.transcript().filter((m) => m.direction === 'agent').map((m) => m.author)), new Set([beasAgent.name]));
      const [adaSeen, beaSeen] = [ada, bea].map((c) => c.received('message').map((m) => m.body).join('\n'));
      assert.doesNotMatch(adaSeen, /Bea/, 'Ada saw nothing of Bea’s chat');
      assert.doesNotMatch(beaSeen, /Ada/, 'Bea saw nothing of Ada’s chat');

      // Flex: two channels, each with its own customer's messages only.
      await flex.customerMessagesArrived(['Thanks!', 'Great, thank you']);
      assert.deepEqual(await flex.customerBodies(adaChannel.sid), ['Hi, this is Ada', 'Thanks!']);
      assert.deepEqual(await flex.customerBodies(beaChannel.sid), ['Hi, this is Bea', 'Great, thank you']);
      const { channels, tasks } = await flex.view();
      assert.equal(channels.length, 2);
      assert.deepEqual(tasks.map((task) => task.channelSid).sort(), [adaChannel.sid, beaChannel.sid].sort());
    });

    test('two tabs of one customer share one Flex channel', async (t) => {
      const { flex, customer, reconnect } = await flexbridgeFor(t, { backend, agents: 1 });
      const firstTab = await customer('Cleo');
      const secondTab = await reconnect(firstTab);
      assert.equal(secondTab.id, firstTab.id, 'the token names the same customer');

      const first = await firstTab.send('Sent from the first tab');
      await secondTab.next('message', (m) => m.seq === first.seq);
      const second = await secondTab.send('Sent from the second tab');
      await firstTab.next('message', (m) => m.seq === second.seq);
      assert.equal(second.conversationId, first.conversationId, 'one conversation');

      await flex.customerMessagesArrived(['Sent from the first tab', 'Sent from the second tab']);
      const channel = await flex.channelWith('Sent from the first tab');
      assert.deepEqual(await flex.customerBodies(channel.sid), ['Sent from the first tab', 'Sent from the second tab']);

      const agent = await flex.acceptChat(channel.sid);
      await agent.say('I see both of your messages');
      await Promise.all([firstTab, secondTab].map((tab) => tab.agentMessage('I see both of your messages')));

      const { channels, tasks } = await flex.view();
      assert.deepEqual(channels.map((c) => c.sid), [channel.sid], 'exactly one Flex channel');
      assert.deepEqual(tasks.map((task) => task.channelSid), [channel.sid], 'exactly one task');
      const expected = [
        customerSaid('Sent from the first tab'),
        customerSaid('Sent from the second tab'),
        agentSaid('I see both of your messages'),
      ];
      assert.deepEqual(said(firstTab.transcript()), expected);
      assert.deepEqual(said(secondTab.transcript()), expected);
    });

    test('five concurrent first messages create exactly one channel', async (t) => {
      const { flex, customer, reconnect } = await flexbridgeFor(t, { backend, agents: 2 });
      const firstTab = await customer('Dev');
      const tabs = [firstTab, ...(await Promise.all([1, 2, 3, 4].map(() => reconnect(firstTab))))];

      const bodies = tabs.map((_, i) => `First message from tab ${i + 1}`);
      const acks = await Promise.all(tabs.map((tab, i) => tab.send(bodies[i])));

      assert.equal(new Set(acks.map((ack) => ack.conversationId)).size, 1, 'one conversation for all five');
      assert.equal(new Set(acks.map((ack) => ack.seq)).size, 5, 'five messages');
      await flex.customerMessagesArrived(bodies);
      const channel = await flex.channelWith(bodies[0]);
      const inSeqOrder = acks
        .map((ack, i) => [ack.seq, bodies[i]])
        .sort(([a], [b]) => a - b)
        .map(([, body]) => body);
      assert.deepEqual(await flex.customerBodies(channel.sid), inSeqOrder, 'in Flex once each, in seq order');
      const { channels, tasks } = await flex.view();
      assert.deepEqual(channels.map((c) => c.sid), [channel.sid], 'exactly one Flex channel');
      assert.deepEqual(tasks.map((task) => task.channelSid), [channel.sid], 'exactly one task');
    });

    test('an agent reply reaches a customer who reconnects later', async (t) => {
      const { flex, customer, reconnect } = await flexbridgeFor(t, { backend, agents: 1 });
      const eve = await customer('Eve');
      await eve.send('Is anyone there?');
      const agent = await flex.acceptChat((await flex.channelWith('Is anyone there?')).sid);
      await agent.say('One moment please');
      await eve.agentMessage('One moment please');
      const lastSeq = eve.lastSeq();

      eve.disconnect();
      await agent.say('Sorry for the wait');
      await agent.say('How can I help?');
      // The bridge took both (answered Flex's webhooks) while Eve was away.
      await flex.messageWebhookDelivered('Sorry for the wait');
      await flex.messageWebhookDelivered('How can I help?');

      const back = await reconnect(eve, { lastSeq });
      const [session] = back.received('session');
      assert.deepEqual(said(session.messages), [agentSaid('Sorry for the wait'), agentSaid('How can I help?')]);
      assert.ok(session.messages.every((m) => m.seq > lastSeq), 'only what came after lastSeq');
      assert.equal(session.conversation.state, 'open');
      assert.deepEqual(said(await back.history()), [
        customerSaid('Is anyone there?'),
        agentSaid('One moment please'),
        agentSaid('Sorry for the wait'),
        agentSaid('How can I help?'),
      ]);
    });

    test('when the agent ends the chat the customer is told, and the next message opens a new channel and a new task', async (t) => {
      const { flex, customer } = await flexbridgeFor(t, { backend, agents: 1 });
      const finn = await customer('Finn');
      const first = await finn.send('My first question');
      const firstChannel = await flex.channelWith('My first question');
      const firstAgent = await flex.acceptChat(firstChannel.sid);
      await finn.next('agent:joined', (e) => e.conversationId === first.conversationId);
      await firstAgent.say('Answered. Goodbye!');
      await finn.agentMessage('Answered. Goodbye!');

      await firstAgent.end();
      const ended = await finn.next('chat:ended');
      assert.deepEqual(ended, { conversationId: first.conversationId, reason: 'agent_ended', endedBy: firstAgent.name });
      await finn.next('conversation', (c) => c.id === first.conversationId && c.state === 'closed');
      assert.equal((await flex.channel(firstChannel.sid)).closed, true);

      const second = await finn.send('Actually, one more thing');
      assert.notEqual(second.conversationId, first.conversationId, 'a new conversation');
      const secondChannel = await flex.channelWith('Actually, one more thing');
      assert.notEqual(secondChannel.sid, firstChannel.sid, 'a new Flex channel');
      const secondAgent = await flex.acceptChat(secondChannel.sid);
      await secondAgent.say('Welcome back, Finn');
      await finn.agentMessage('Welcome back, Finn');

      const { channels, tasks } = await flex.view();
      assert.deepEqual(channels.map((c) => c.sid).sort(), [firstChannel.sid, secondChannel.sid].sort());
      assert.equal(tasks.length, 2, 'a new task');
      assert.deepEqual(tasks.map((task) => task.channelSid).sort(), [firstChannel.sid, secondChannel.sid].sort());
      assert.notEqual(secondAgent.taskSid, firstAgent.taskSid);
      assert.deepEqual(await flex.customerBodies(firstChannel.sid), ['My first question']);
      assert.deepEqual(await flex.customerBodies(secondChannel.sid), ['Actually, one more thing']);
      assert.equal(finn.received('chat:ended').length, 1, 'told once');
      assert.deepEqual(said(await finn.history()), [
        customerSaid('My first question'),
        agentSaid('Answered. Goodbye!'),
        customerSaid('Actually, one more thing'),
        agentSaid('Welcome back, Finn'),
      ]);
    });
  });
}

if (BACKENDS.includes('conversations')) {
  describe('conversations backend, routed by Studio', () => {
    test('a conversation routed by the Studio flow reaches an agent, and the reply and the end come back', async (t) => {
      const { emulator, flex, customer } = await flexbridgeFor(t, {
        backend: 'conversations',
        agents: 1,
        routing: 'studio',
      });
      const rio = await customer('Rio');
      const first = await rio.send('Routed by Studio, I hope');
      const channel = await flex.channelWith('Routed by Studio, I hope');
      const agent = await flex.acceptChat(channel.sid);
      await agent.say('Studio sent you to me');
      await rio.agentMessage('Studio sent you to me');
      await agent.end();
      assert.deepEqual(await rio.next('chat:ended'), { conversationId: first.conversationId, reason: 'agent_ended', endedBy: agent.name });

      const { state, tasks } = await flex.view();
      assert.deepEqual(
        state.studio_executions.map((e) => e.flow_sid),
        [emulator.bootstrap.studio_flow_sid],
        'one execution of the Webchat Flow made the task',
      );
      assert.deepEqual(tasks.map((task) => task.channelSid), [channel.sid]);
    });
  });
}
