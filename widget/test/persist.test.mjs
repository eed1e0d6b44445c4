import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  forgetCustomer,
  JsonStorage,
  Keys,
  loadCustomer,
  loadOutbox,
  loadTranscript,
  saveCustomer,
  saveOutbox,
  saveTranscript,
} from '../src/persist.js';
import { ChatStore } from '../src/store.js';
import { MemoryStorage } from './support.mjs';

const agentMsg = (seq) => ({ seq, direction: 'agent', author: 'alice', body: `agent ${seq}`, createdAt: null });

/** A storage that refuses writes over `limit` characters, like a full quota. */
class TinyStorage extends MemoryStorage {
  constructor(limit) {
    super();
    this.limit = limit;
  }
  setItem(key, value) {
    if (String(value).length > this.limit) throw new DOMException('quota', 'QuotaExceededError');
    super.setItem(key, value);
  }
}

describe('persist', () => {
  test('a missing or blocked storage degrades to "not stored" without throwing', () => {
    const blocked = new JsonStorage(() => {
      throw new DOMException('denied', 'SecurityError');
    });
    assert.equal(blocked.set('k', 1), false);
    assert.equal(blocked.get('k'), null);
    blocked.remove('k');
    const missing = new JsonStorage(() => undefined);
    assert.equal(missing.set('k', 1), false);
  });

  test('a corrupt value reads as nothing', () => {
    const raw = new MemoryStorage();
    raw.setItem(Keys.customer, '{not json');
    assert.equal(loadCustomer(new JsonStorage(() => raw)), null);
    raw.setItem(Keys.customer, JSON.stringify({ token: '', customerId: 'cu-1' }));
    assert.equal(loadCustomer(new JsonStorage(() => raw)), null);
  });

  test('customer round-trip and forget removes everything of that customer', () => {
    const local = new JsonStorage(() => new MemoryStorage());
    const session = new JsonStorage(() => new MemoryStorage());
    saveCustomer(local, { token: 't', customerId: 'cu-1', name: 'Bob' });
    assert.deepEqual(loadCustomer(local), { token: 't', customerId: 'cu-1', name: 'Bob' });
    const store = new ChatStore({ customerId: 'cu-1' });
    store.applyMessage(agentMsg(1));
    saveTranscript(local, store.snapshot());
    saveOutbox(session, 'cu-1', [{ clientMessageId: 'a', body: 'b', createdAt: 'c' }]);

    forgetCustomer(local, session, 'cu-1');
    assert.equal(loadCustomer(local), null);
    assert.equal(loadTranscript(local, 'cu-1'), null);
    assert.deepEqual(loadOutbox(session, 'cu-1'), []);
  });

  test('saving a transcript merges with what another tab saved', () => {
    const local = new JsonStorage(() => new MemoryStorage());
    const tabA = new ChatStore({ customerId: 'cu-1' });
    tabA.applyMessages([agentMsg(1), agentMsg(2)]);
    const tabB = new ChatStore({ customerId: 'cu-1' });
    tabB.applyMessages([agentMsg(1), agentMsg(3)]);
    saveTranscript(local, tabB.snapshot());
    saveTranscript(local, tabA.snapshot()); // A never saw 3; it must not erase it
    const stored = loadTranscript(local, 'cu-1');
    assert.deepEqual(
      stored.items.map((i) => i.seq),
      [1, 2, 3],
    );
    assert.equal(stored.lastSeq, 3);
  });

  test('a full quota keeps the newest messages instead of nothing', () => {
    const local = new JsonStorage(() => new TinyStorage(1500));
    const store = new ChatStore({ customerId: 'cu-1' });
    for (let seq = 1; seq <= 60; seq += 1) store.applyMessage(agentMsg(seq));
    assert.equal(saveTranscript(local, store.snapshot()), true);
    const stored = loadTranscript(local, 'cu-1');
    assert.ok(stored.items.length > 0 && stored.items.length < 60);
    assert.equal(stored.items.at(-1).seq, 60);
    assert.equal(stored.lastSeq, 60);
  });

  test('an empty outbox removes its key', () => {
    const raw = new MemoryStorage();
    const session = new JsonStorage(() => raw);
    saveOutbox(session, 'cu-1', [{ clientMessageId: 'a', body: 'b', createdAt: 'c' }]);
    assert.equal(raw.keys().length, 1);
    saveOutbox(session, 'cu-1', []);
    assert.equal(raw.keys().length, 0);
  });
});
