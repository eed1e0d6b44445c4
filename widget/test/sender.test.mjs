import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BACKOFF_MAX_MS, backoffDelay, Sender } from '../src/sender.js';
import { ChatStore, Status } from '../src/store.js';

/** A socket stand-in: every emit waits until the test answers it. */
function fakeTransmit() {
  const calls = [];
  const transmit = (payload) =>
    new Promise((resolve, reject) => {
      calls.push({
        payload,
        ack: (value) => resolve(value),
        lose: () => reject(new Error('operation has timed out')),
      });
    });
  return { calls, transmit };
}

/** A clock the test advances by hand. */
function fakeClock() {
  const timers = [];
  const schedule = (fn, ms) => {
    const timer = { fn, ms, cancelled: false };
    timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  };
  const fireNext = () => {
    const timer = timers.find((t) => !t.cancelled && !t.fired);
    assert.ok(timer, 'a retry is scheduled');
    timer.fired = true;
    timer.fn();
    return timer.ms;
  };
  const active = () => timers.filter((t) => !t.cancelled && !t.fired);
  return { schedule, fireNext, active };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function setup({ online = true } = {}) {
  const store = new ChatStore({ customerId: 'cu1' });
  const socket = fakeTransmit();
  const clock = fakeClock();
  let n = 0;
  const saved = [];
  const sender = new Sender({
    store,
    transmit: socket.transmit,
    schedule: clock.schedule,
    backoff: (attempts) => attempts * 1000,
    newId: () => `id-${++n}`,
    onQueueChange: (entries) => saved.push(entries),
    now: () => '2026-11-25T17:20:00.000Z',
  });
  sender.setOnline(online);
  return { store, socket, clock, sender, saved };
}

const ok = (seq, clientMessageId) => ({
  ok: { seq, clientMessageId, conversationId: 'conv-1', createdAt: '2026-11-25T17:20:01.000Z' },
});

describe('Sender', () => {
  test('sends one message at a time, in the order written', async () => {
    const { socket, sender, store } = setup();
    sender.send('first');
    sender.send('second');
    assert.equal(socket.calls.length, 1, 'the second waits for the first ack');
    assert.deepEqual(socket.calls[0].payload, { clientMessageId: 'id-1', body: 'first' });
    socket.calls[0].ack(ok(1, 'id-1'));
    await tick();
    assert.equal(socket.calls.length, 2);
    assert.deepEqual(socket.calls[1].payload, { clientMessageId: 'id-2', body: 'second' });
    socket.calls[1].ack(ok(2, 'id-2'));
    await tick();
    assert.equal(store.byClientMessageId('id-1').status, Status.sent);
    assert.equal(store.byClientMessageId('id-2').seq, 2);
    assert.deepEqual(sender.pending(), []);
  });

  test('a lost ack re-emits the same clientMessageId after a backoff', async () => {
    const { socket, sender, clock, store } = setup();
    sender.send('hello');
    socket.calls[0].lose();
    await tick();
    assert.equal(socket.calls.length, 1, 'no immediate resend');
    assert.match(store.byClientMessageId('id-1').note, /Retrying/);
    assert.equal(clock.fireNext(), 1000);
    assert.equal(socket.calls.length, 2);
    assert.deepEqual(socket.calls[1].payload, { clientMessageId: 'id-1', body: 'hello' });
    socket.calls[1].lose();
    await tick();
    assert.equal(clock.fireNext(), 2000, 'the delay grows with each attempt');
    socket.calls[2].ack(ok(7, 'id-1'));
    await tick();
    const item = store.byClientMessageId('id-1');
    assert.equal(item.status, Status.sent);
    assert.equal(item.note, null);
    assert.equal(store.items().length, 1);
  });

  test('a lost ack whose message already reached the store (echo) is not sent again', async () => {
    const { socket, sender, store, clock } = setup();
    sender.send('hello');
    sender.send('next');
    store.applyMessage({
      seq: 4,
      direction: 'customer',
      clientMessageId: 'id-1',
      body: 'hello',
      conversationId: 'conv-1',
      createdAt: null,
    });
    socket.calls[0].lose();
    await tick();
    assert.equal(clock.active().length, 0);
    assert.equal(socket.calls.length, 2);
    assert.equal(socket.calls[1].payload.clientMessageId, 'id-2');
  });

  test('offline: a lost ack waits for the connection, then resends at once', async () => {
    const { socket, sender, clock } = setup();
    sender.send('hello');
    sender.setOnline(false);
    socket.calls[0].lose(); // socket.io-client fails pending acks on disconnect
    await tick();
    assert.equal(clock.active().length, 0, 'no timer while offline');
    assert.equal(socket.calls.length, 1);
    sender.setOnline(true);
    assert.equal(socket.calls.length, 2);
    assert.equal(socket.calls[1].payload.clientMessageId, 'id-1');
  });

  test('messages written while offline are sent when the session is back', async () => {
    const { socket, sender, store } = setup({ online: false });
    sender.send('one');
    sender.send('two');
    assert.equal(socket.calls.length, 0);
    assert.equal(store.byClientMessageId('id-1').status, Status.sending);
    sender.setOnline(true);
    assert.equal(socket.calls.length, 1);
  });

  test('after a reconnect, messages the replay shows committed are dropped, not resent', async () => {
    const { socket, sender, store } = setup({ online: false });
    sender.send('one');
    sender.send('two');
    store.applyMessages([
      { seq: 1, direction: 'customer', clientMessageId: 'id-1', body: 'one', conversationId: 'c', createdAt: null },
    ]);
    sender.setOnline(true);
    assert.equal(socket.calls.length, 1);
    assert.equal(socket.calls[0].payload.clientMessageId, 'id-2');
  });

  test('a retryable error (rate_limited) backs off and retries the same id', async () => {
    const { socket, sender, clock, store } = setup();
    sender.send('hello');
    socket.calls[0].ack({ error: { code: 'rate_limited', message: 'Too many messages.' } });
    await tick();
    assert.equal(store.byClientMessageId('id-1').status, Status.sending);
    assert.equal(store.byClientMessageId('id-1').note, 'Too many messages. Retrying…');
    clock.fireNext();
    assert.equal(socket.calls[1].payload.clientMessageId, 'id-1');
  });

  test('a final error shows next to the message and the queue moves on', async () => {
    const { socket, sender, store, clock } = setup();
    sender.send('x'.repeat(10));
    sender.send('next');
    socket.calls[0].ack({ error: { code: 'message_too_long', message: 'Message too long.' } });
    await tick();
    const item = store.byClientMessageId('id-1');
    assert.equal(item.status, Status.rejected);
    assert.equal(item.error, 'Message too long.');
    assert.equal(clock.active().length, 0);
    assert.equal(socket.calls[1].payload.clientMessageId, 'id-2');
  });

  test('a malformed ack is a final error, not a crash', async () => {
    const { socket, sender, store } = setup();
    sender.send('hello');
    socket.calls[0].ack('weird');
    await tick();
    assert.equal(store.byClientMessageId('id-1').status, Status.rejected);
  });

  test('coming back online cancels a pending backoff and retries now', async () => {
    const { socket, sender, clock } = setup();
    sender.send('hello');
    socket.calls[0].lose();
    await tick();
    assert.equal(clock.active().length, 1);
    sender.setOnline(false);
    sender.setOnline(true);
    assert.equal(clock.active().length, 0);
    assert.equal(socket.calls.length, 2);
  });

  test('the queue is reported for persistence and restored after a reload', async () => {
    const first = setup({ online: false });
    first.sender.send('survives a reload');
    const stored = first.saved.at(-1);
    assert.deepEqual(stored, [
      { clientMessageId: 'id-1', body: 'survives a reload', createdAt: '2026-11-25T17:20:00.000Z' },
    ]);

    const second = setup({ online: false });
    second.sender.restore(JSON.parse(JSON.stringify(stored)));
    assert.equal(second.store.byClientMessageId('id-1').status, Status.sending);
    second.sender.setOnline(true);
    assert.deepEqual(second.socket.calls[0].payload, { clientMessageId: 'id-1', body: 'survives a reload' });
  });

  test('a restored entry the transcript already shows committed is not resent', () => {
    const { sender, store, socket } = setup({ online: false });
    store.applyMessage({ seq: 3, direction: 'customer', clientMessageId: 'old', body: 'x', createdAt: null });
    sender.restore([{ clientMessageId: 'old', body: 'x', createdAt: '2026-11-25T17:20:00.000Z' }]);
    sender.setOnline(true);
    assert.equal(socket.calls.length, 0);
    assert.deepEqual(sender.pending(), []);
  });

  test('a throwing transmit counts as a lost ack', async () => {
    const store = new ChatStore({ customerId: 'cu1' });
    const clock = fakeClock();
    let calls = 0;
    const sender = new Sender({
      store,
      transmit: () => {
        calls += 1;
        throw new Error('socket gone');
      },
      schedule: clock.schedule,
      backoff: () => 5,
      newId: () => 'id-1',
    });
    sender.setOnline(true);
    sender.send('hello');
    await tick();
    assert.equal(clock.active().length, 1);
    clock.fireNext();
    assert.equal(calls, 2);
  });
});

describe('backoffDelay', () => {
  test('doubles from 1 s and stops at the maximum', () => {
    const mid = () => 0.5; // no jitter
    assert.equal(backoffDelay(1, mid), 1000);
    assert.equal(backoffDelay(2, mid), 2000);
    assert.equal(backoffDelay(3, mid), 4000);
    assert.equal(backoffDelay(20, mid), BACKOFF_MAX_MS);
  });

  test('jitter stays within ±20 % and under the maximum', () => {
    assert.equal(backoffDelay(3, () => 0), 3200);
    assert.equal(backoffDelay(3, () => 1), 4800);
    assert.ok(backoffDelay(30, () => 1) <= BACKOFF_MAX_MS);
  });
});
