// The customer ends the chat (`chat:end`) through the real bridge and the
// Flex emulator, once per backend: the messages sent before still reach
// the agent first and in order, then the chat ends in Flex (the task wraps
// up), every tab is told once, and the next message opens a new channel and
// a new task.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { flexbridgeFor } from './lib/bridge.mjs';
import { BACKENDS, waitFor } from './lib/harness.mjs';

for (const backend of BACKENDS) {
  describe(`${backend} backend`, () => {
    test('the customer ends the chat: Flex gets the pending messages, then the end; every tab is told once; the next message starts anew', async (t) => {
      const { flex, customer, reconnect } = await flexbridgeFor(t, { backend, agents: 1 });
      const gus = await customer('Gus');
      const otherTab = await reconnect(gus);
      const first = await gus.send('Where is my order?');
      const channel = await flex.channelWith('Where is my order?');
      const agent = await flex.acceptChat(channel.sid);
      await gus.next('agent:joined', (e) => e.conversationId === first.conversationId);
      // Flex refuses the next message creates for a while: they are still
      // queued in the bridge when the customer ends the chat.
      await flex.api.faults.http({ method: 'POST', path: flex.profile.messageCreatePath, kind: 'error', status: 500, lands: false, count: 2 });
      await gus.send('Never mind, found it');
      await gus.send('Bye!');

      const ack = await gus.emit('chat:end', {});

      assert.deepEqual(ack, { ok: { ended: true, conversationId: first.conversationId } });
      for (const tab of [gus, otherTab]) {
        const ended = await tab.next('chat:ended');
        assert.deepEqual(ended, { conversationId: first.conversationId, reason: 'customer_ended', endedBy: null });
        await tab.next('conversation', (c) => c.id === first.conversationId && c.state === 'closed');
      }
      await waitFor(async () => (await flex.channel(channel.sid)).closed, { message: 'Flex ended the chat' });
      assert.deepEqual(await flex.customerBodies(channel.sid), ['Where is my order?', 'Never mind, found it', 'Bye!']);
      const task = (await flex.tasks()).find((x) => x.sid === agent.taskSid);
      assert.ok(['wrapping', 'completed'].includes(task.assignmentStatus), `task ${task.assignmentStatus}`);
      // Nothing left to end: an ok no-op.
      assert.deepEqual(await gus.emit('chat:end', {}), { ok: { ended: false, conversationId: null } });

      const second = await gus.send('One more question, sorry');
      assert.notEqual(second.conversationId, first.conversationId, 'a new conversation');
      const secondChannel = await flex.channelWith('One more question, sorry');
      assert.notEqual(secondChannel.sid, channel.sid, 'a new Flex channel');
      assert.equal(secondChannel.closed, false);
      await waitFor(async () => (await flex.tasks()).length === 2, { message: 'a new task' });
      // Flex's own end came back to the bridge as a webhook, and told no one
      // again (a `history` round trip flushes anything still in flight).
      await waitFor(
        async () =>
          (await flex.api.webhooks()).some(
            (d) =>
              d.url.endsWith(flex.profile.webhookPath) &&
              d.outcome === 'delivered' &&
              flex.profile.isEndWebhookOf(d, channel.sid),
          ),
        { message: "Flex's end reached the bridge" },
      );
      await gus.history();
      await otherTab.history();
      assert.equal(gus.received('chat:ended').length, 1, 'told once');
      assert.equal(otherTab.received('chat:ended').length, 1, 'the other tab told once');
    });
  });
}
