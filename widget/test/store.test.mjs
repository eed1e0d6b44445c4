import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChatStore, mergeSnapshots, NoticeType, Status } from '../src/store.js';

function agentMsg(seq, body = `agent ${seq}`) {
  return {
    seq,
    conversationId: 'conv-1',
    direction: 'agent',
    author: 'alice',
    body,
    clientMessageId: null,
    createdAt: '2026-11-25T17:20:00.000Z',
  };
}

function customerMsg(seq, clientMessageId, body = `customer ${seq}`) {
  return {
    seq,
    conversationId: 'conv-1',
    direction: 'customer',
    author: 'Bob',
    body,
    clientMessageId,
    createdAt: '2026-11-25T17:20:00.000Z',
  };
}

const bodies = (store) => store.items().map((i) => (i.kind === 'notice' ? `[${i.type}]` : i.body));

describe('ChatStore: seq de-duplication', () => {
  test('a seq seen twice is shown once', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    assert.equal(store.applyMessage(agentMsg(1)), true);
    assert.equal(store.applyMessage(agentMsg(1, 'a replayed copy')), false);
    assert.deepEqual(bodies(store), ['agent 1']);
  });

  test('a replay overlapping live events keeps each seq once, in seq order', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(agentMsg(3));
    store.applyMessage(agentMsg(5));
    store.applyMessages([agentMsg(2), agentMsg(3), agentMsg(4), agentMsg(5)]);
    assert.deepEqual(
      store.items().map((i) => i.seq),
      [2, 3, 4, 5],
    );
  });

  test('malformed messages are ignored', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    for (const bad of [null, 'x', {}, { seq: 0 }, { seq: -1 }, { seq: 1.5 }, { seq: '3' }]) {
      assert.equal(store.applyMessage(bad), false);
    }
    assert.equal(store.items().length, 0);
    assert.equal(store.lastSeq, 0);
  });

  test('an unknown direction is shown as a system message, never as the customer', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage({ ...agentMsg(1), direction: 'admin' });
    assert.equal(store.items()[0].direction, 'system');
  });
});

describe('ChatStore: lastSeq (the resume point)', () => {
  test('is the highest seq received through the stream', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessages([agentMsg(4), agentMsg(9), agentMsg(7)]);
    assert.equal(store.lastSeq, 9);
  });

  test('does not move on an ack, which may overtake an agent message still in flight', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(agentMsg(5));
    store.addOutgoing({ clientMessageId: 'm1', body: 'hi' });
    store.markAcked('m1', { seq: 7, conversationId: 'conv-1', createdAt: '2026-11-25T17:21:00.000Z' });
    assert.equal(store.lastSeq, 5, 'seq 6 may still be on its way: resume from 5');
    assert.equal(store.maxSeq, 7);
    // The agent message 6 arrives late: it sorts before our message.
    store.applyMessage(agentMsg(6));
    assert.deepEqual(bodies(store), ['agent 5', 'agent 6', 'hi']);
    // Our own echo moves the resume point.
    store.applyMessage(customerMsg(7, 'm1', 'hi'));
    assert.equal(store.lastSeq, 7);
    assert.equal(store.items().length, 3);
  });
});

describe('ChatStore: own messages matched by clientMessageId', () => {
  test('the ack turns "sending" into "sent" with the seq', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.addOutgoing({ clientMessageId: 'm1', body: 'hello' });
    assert.equal(store.byClientMessageId('m1').status, Status.sending);
    assert.equal(store.isCommitted('m1'), false);
    store.markAcked('m1', { seq: 1, conversationId: 'conv-1', createdAt: '2026-11-25T17:21:00.000Z' });
    const item = store.byClientMessageId('m1');
    assert.equal(item.status, Status.sent);
    assert.equal(item.seq, 1);
    assert.equal(store.isCommitted('m1'), true);
  });

  test('the echo arriving before the ack merges into the pending message', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.addOutgoing({ clientMessageId: 'm1', body: 'hello' });
    store.applyMessage(customerMsg(3, 'm1', 'hello'));
    assert.equal(store.items().length, 1);
    assert.equal(store.byClientMessageId('m1').status, Status.sent);
    store.markAcked('m1', { seq: 3 });
    assert.equal(store.items().length, 1);
    assert.equal(store.byClientMessageId('m1').seq, 3);
  });

  test("another tab's message arrives once as a customer message", () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(customerMsg(1, 'other-tab'));
    store.applyMessage(customerMsg(1, 'other-tab'));
    assert.equal(store.items().length, 1);
    const [item] = store.items();
    assert.equal(item.direction, 'customer');
    assert.equal(item.status, Status.sent);
  });

  test('a second seq for a clientMessageId already committed is ignored', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(customerMsg(1, 'm1'));
    assert.equal(store.applyMessage(customerMsg(2, 'm1')), false);
    assert.equal(store.items().length, 1);
  });

  test('uncommitted messages come last in the order written, then move to their seq', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(agentMsg(1));
    store.addOutgoing({ clientMessageId: 'a', body: 'first' });
    store.addOutgoing({ clientMessageId: 'b', body: 'second' });
    store.applyMessage(agentMsg(2));
    assert.deepEqual(bodies(store), ['agent 1', 'agent 2', 'first', 'second']);
    store.markAcked('a', { seq: 3 });
    store.markAcked('b', { seq: 4 });
    store.applyMessage(agentMsg(5));
    assert.deepEqual(bodies(store), ['agent 1', 'agent 2', 'first', 'second', 'agent 5']);
  });

  test('delivery events advance the status and never go back', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.addOutgoing({ clientMessageId: 'm1', body: 'x' });
    // The delivery can overtake the ack.
    store.applyDelivery({ seq: 1, clientMessageId: 'm1', status: 'delivered' });
    assert.equal(store.byClientMessageId('m1').status, Status.delivered);
    store.markAcked('m1', { seq: 1 });
    assert.equal(store.byClientMessageId('m1').status, Status.delivered, 'a late ack does not undo delivered');
  });

  test('a failed delivery shows its error', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(customerMsg(1, 'm1'));
    store.applyDelivery({ seq: 1, clientMessageId: 'm1', status: 'failed', error: 'Flex refused the message' });
    const item = store.byClientMessageId('m1');
    assert.equal(item.status, Status.failed);
    assert.equal(item.error, 'Flex refused the message');
  });

  test('a delivery found by seq alone works; for an agent message it is ignored', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(customerMsg(1, null));
    store.applyMessage(agentMsg(2));
    assert.equal(store.applyDelivery({ seq: 1, status: 'delivered' }), true);
    assert.equal(store.applyDelivery({ seq: 2, status: 'delivered' }), false);
    assert.equal(store.applyDelivery({ seq: 99, status: 'delivered' }), false);
  });

  test('a rejected message shows the error text and stays uncommitted', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.addOutgoing({ clientMessageId: 'm1', body: 'x' });
    store.markRejected('m1', { code: 'message_too_long', message: 'Message is longer than 1600 characters' });
    const item = store.byClientMessageId('m1');
    assert.equal(item.status, Status.rejected);
    assert.equal(item.error, 'Message is longer than 1600 characters');
    assert.equal(store.isCommitted('m1'), false);
  });

  test('a rejected message stays where it was written, not below later messages', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(agentMsg(1));
    store.addOutgoing({ clientMessageId: 'bad', body: 'refused' });
    store.markRejected('bad', { code: 'invalid_payload', message: 'no' });
    store.applyMessage(agentMsg(2));
    store.addOutgoing({ clientMessageId: 'later', body: 'pending' });
    assert.deepEqual(bodies(store), ['agent 1', 'refused', 'agent 2', 'pending']);
  });

  test('the same clientMessageId is not added twice', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    assert.equal(store.addOutgoing({ clientMessageId: 'm1', body: 'x' }), true);
    assert.equal(store.addOutgoing({ clientMessageId: 'm1', body: 'x' }), false);
    assert.equal(store.items().length, 1);
  });
});

describe('ChatStore: notices and the chat state', () => {
  test('agent joined: one notice per agent and conversation, after the messages so far', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(customerMsg(1, 'm1', 'hello'));
    store.agentJoined({ conversationId: 'conv-1', agentName: 'alice' });
    store.agentJoined({ conversationId: 'conv-1', agentName: 'alice' });
    store.applyMessage(agentMsg(2, 'hi, how can I help?'));
    assert.deepEqual(bodies(store), ['hello', `[${NoticeType.agentJoined}]`, 'hi, how can I help?']);
    assert.deepEqual(store.conversation, { id: 'conv-1', state: 'open', agent: { name: 'alice' } });
  });

  test('chat ended: ended until the customer writes again or chooses a new chat', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.setConversation({ id: 'conv-1', state: 'open', agent: { name: 'alice' } });
    assert.equal(store.ended, false);
    store.chatEnded({ conversationId: 'conv-1', reason: 'agent_ended' });
    assert.equal(store.ended, true);
    assert.equal(store.conversation.state, 'closed');
    store.chatEnded({ conversationId: 'conv-1', reason: 'agent_ended' });
    assert.equal(store.items().filter((i) => i.type === NoticeType.chatEnded).length, 1);

    store.dismissEnded();
    assert.equal(store.ended, false);

    store.chatEnded({ conversationId: 'conv-2', reason: 'agent_ended' });
    assert.equal(store.ended, true);
    store.addOutgoing({ clientMessageId: 'm9', body: 'new question' });
    assert.equal(store.ended, false, 'writing again starts the new chat');
  });

  test('a closed conversation in the session shows the ended notice once', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.setConversation({ id: 'conv-1', state: 'closed', agent: null });
    store.setConversation({ id: 'conv-1', state: 'closed', agent: null });
    assert.equal(store.ended, true);
    assert.equal(store.items().length, 1);
  });

  test('a new conversation opening ends the "ended" state', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.chatEnded({ conversationId: 'conv-1' });
    store.setConversation({ id: 'conv-2', state: 'opening', agent: null });
    assert.equal(store.ended, false);
  });

  test('listeners hear every change', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    let calls = 0;
    const unsubscribe = store.subscribe(() => {
      calls += 1;
    });
    store.applyMessage(agentMsg(1));
    store.applyMessage(agentMsg(1)); // duplicate: no change
    unsubscribe();
    store.applyMessage(agentMsg(2));
    assert.equal(calls, 1);
  });
});

describe('ChatStore: snapshots', () => {
  test('round-trip keeps committed messages, notices, lastSeq and the conversation, not pending ones', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(customerMsg(1, 'm1', 'hello'));
    store.agentJoined({ conversationId: 'conv-1', agentName: 'alice' });
    store.applyMessage(agentMsg(2));
    store.addOutgoing({ clientMessageId: 'm2', body: 'pending' });
    const snap = JSON.parse(JSON.stringify(store.snapshot()));

    const restored = new ChatStore({ customerId: 'cu1' });
    assert.equal(restored.restore(snap), true);
    assert.deepEqual(bodies(restored), ['hello', `[${NoticeType.agentJoined}]`, 'agent 2']);
    assert.equal(restored.lastSeq, 2);
    assert.equal(restored.conversation.agent.name, 'alice');
    // Replaying what the snapshot holds adds nothing.
    assert.equal(restored.applyMessages([customerMsg(1, 'm1', 'hello'), agentMsg(2)]), false);
  });

  test("a snapshot of another customer is refused", () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(agentMsg(1));
    const other = new ChatStore({ customerId: 'cu2' });
    assert.equal(other.restore(store.snapshot()), false);
    assert.equal(other.items().length, 0);
  });

  test('restoring an acked message does not move lastSeq past the stream', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    store.applyMessage(agentMsg(1));
    store.addOutgoing({ clientMessageId: 'm1', body: 'x' });
    store.markAcked('m1', { seq: 5 });
    const restored = new ChatStore({ customerId: 'cu1' });
    restored.restore(store.snapshot());
    assert.equal(restored.lastSeq, 1);
    assert.equal(restored.isCommitted('m1'), true);
  });

  test('a snapshot keeps only the newest items', () => {
    const store = new ChatStore({ customerId: 'cu1' });
    for (let seq = 1; seq <= 10; seq += 1) store.applyMessage(agentMsg(seq));
    const snap = store.snapshot(3);
    assert.deepEqual(
      snap.items.map((i) => i.seq),
      [8, 9, 10],
    );
    assert.equal(snap.lastSeq, 10);
  });

  test('merging two tabs keeps both sets of messages and the higher lastSeq', () => {
    const tabA = new ChatStore({ customerId: 'cu1' });
    tabA.applyMessages([agentMsg(1), agentMsg(2)]);
    tabA.addOutgoing({ clientMessageId: 'a1', body: 'from A' });
    tabA.markAcked('a1', { seq: 5 });
    const tabB = new ChatStore({ customerId: 'cu1' });
    tabB.applyMessages([agentMsg(1), agentMsg(2), agentMsg(3), agentMsg(4)]);
    tabB.chatEnded({ conversationId: 'conv-1' });
    tabB.dismissEnded();

    const merged = mergeSnapshots(tabA.snapshot(), tabB.snapshot());
    const store = new ChatStore({ customerId: 'cu1' });
    store.restore(merged);
    assert.deepEqual(
      store.items().filter((i) => i.kind === 'message').map((i) => i.seq),
      [1, 2, 3, 4, 5],
    );
    assert.equal(store.lastSeq, 4);
    const ended = store.items().find((i) => i.type === NoticeType.chatEnded);
    assert.equal(ended.dismissed, true);
  });

  test('merging keeps the more advanced delivery status', () => {
    const tabA = new ChatStore({ customerId: 'cu1' });
    tabA.applyMessage(customerMsg(1, 'm1'));
    const tabB = new ChatStore({ customerId: 'cu1' });
    tabB.applyMessage(customerMsg(1, 'm1'));
    tabB.applyDelivery({ seq: 1, clientMessageId: 'm1', status: 'delivered' });
    const merged = mergeSnapshots(tabA.snapshot(), tabB.snapshot());
    assert.equal(merged.items[0].status, Status.delivered);
  });
});

describe('ChatStore: who ended the chat', () => {
  test('chat:ended keeps who ended it, and a replayed closed conversation says so too', () => {
    const store = new ChatStore({ customerId: 'cu-1' });
    store.setConversation({ id: 'c1', state: 'open', agent: { name: 'alice' }, createdAt: '2026-11-25T17:20:00.000Z' });
    store.chatEnded({ conversationId: 'c1', reason: 'agent_ended', endedBy: 'alice' });
    const notice = store.items().find((i) => i.kind === 'notice');
    assert.equal(notice.reason, 'agent_ended');
    assert.equal(notice.endedBy, 'alice');
    assert.equal(store.conversation.createdAt, '2026-11-25T17:20:00.000Z', 'the start is kept');

    const reloaded = new ChatStore({ customerId: 'cu-1' });
    reloaded.setConversation({ id: 'c2', state: 'closed', agent: null, closeReason: 'customer_ended' });
    const ended = reloaded.items().find((i) => i.kind === 'notice');
    assert.deepEqual([ended.reason, ended.endedBy], ['customer_ended', null]);
  });
});
