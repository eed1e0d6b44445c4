// The transcript of one customer, as this tab knows it: messages (both ways),
// the customer's own messages still on their way, and notices (agent joined,
// chat ended). Pure logic, no DOM, no socket, so it is tested with `node --test`.
//
// Identity and ordering:
// - A message the server has committed has a `seq`, strictly growing over the
//   customer's messages. A `seq` seen once is never shown twice: a live event,
//   a replay on reconnect and a `history` page can overlap.
// - A message this customer sent has a `clientMessageId`. The tab shows it at
//   once ("sending"); the ack, the live echo (which also reaches the customer's
//   other tabs) and a replay all name that id, so each merges into one entry.
// - Items sort by `seq`; a notice (or a message the bridge refused) sits after
//   the highest `seq` known when it arrived; messages not yet committed come
//   last, in the order they were sent.
//
// Two high-water marks, on purpose:
// - `lastSeq` counts only what arrived through the server's stream (`session`,
//   `message`, `history`). It is the resume point (`auth.lastSeq`): an ack can
//   overtake an agent message that is still in flight on the socket, so an
//   ack's `seq` must not move the resume point past it.
// - `maxSeq` counts every `seq` known, acks included; notices anchor to it.

/** Delivery status of the customer's own messages, in the order they advance. */
/** A message's file as the bridge describes it (`{id, name, type, size}`), or null. */
function readAttachment(raw) {
  if (!raw || typeof raw !== 'object' || typeof raw.id !== 'string') return null;
  return {
    id: raw.id,
    name: typeof raw.name === 'string' ? raw.name : 'file',
    type: typeof raw.type === 'string' ? raw.type : '',
    size: Number.isFinite(raw.size) ? raw.size : 0,
  };
}

export const Status = Object.freeze({
  sending: 'sending', // in the outbox, not yet committed by the bridge
  sent: 'sent', // committed by the bridge (acked or seen in the stream)
  delivered: 'delivered', // Flex has it
  failed: 'failed', // Flex refused it for good (delivery event)
  rejected: 'rejected', // the bridge refused it (ack error); never committed
});

const RANK = { sending: 0, rejected: 0, sent: 1, delivered: 2, failed: 2 };

export const NoticeType = Object.freeze({
  agentJoined: 'agent-joined',
  chatEnded: 'chat-ended',
});

/** How many committed items a snapshot keeps (the newest). */
export const SNAPSHOT_LIMIT = 200;

const DIRECTIONS = new Set(['customer', 'agent', 'system']);

function isSeq(value) {
  return Number.isSafeInteger(value) && value > 0;
}

function messageKey(clientMessageId, seq) {
  return clientMessageId ? `c:${clientMessageId}` : `s:${seq}`;
}

export class ChatStore {
  /** @param {{customerId?: string|null}} [options] */
  constructor({ customerId = null } = {}) {
    this.#listeners = new Set();
    this.reset(customerId);
  }

  #listeners;
  /** key → item */
  #items;
  /** seq → item */
  #bySeq;
  /** clientMessageId → item */
  #byClientId;
  /** Insertion counter: tie-breaker for notices and uncommitted messages. */
  #order;
  #lastSeq;
  #maxSeq;
  #conversation;
  #sortedCache;

  /** Forgets everything and starts the transcript of `customerId`. */
  reset(customerId = null) {
    this.customerId = customerId;
    this.#items = new Map();
    this.#bySeq = new Map();
    this.#byClientId = new Map();
    this.#order = 0;
    this.#lastSeq = 0;
    this.#maxSeq = 0;
    this.#conversation = null;
    this.#sortedCache = null;
    this.#changed();
  }

  /** Calls `fn()` after every change; returns the unsubscribe function. */
  subscribe(fn) {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** The resume point: highest `seq` received through the server's stream. */
  get lastSeq() {
    return this.#lastSeq;
  }

  /** Highest `seq` known, acks included. */
  get maxSeq() {
    return this.#maxSeq;
  }

  /** The latest conversation known (`{id, state, agent}`) or null. */
  get conversation() {
    return this.#conversation;
  }

  /**
   * True while the latest conversation is closed and the customer has not yet
   * moved on (sent a message or chosen "new chat").
   */
  get ended() {
    const conv = this.#conversation;
    if (!conv || conv.state !== 'closed') return false;
    const notice = this.#items.get(endedKey(conv.id));
    return Boolean(notice && !notice.dismissed);
  }

  /** Items in display order. The array is shared until the next change: do not mutate. */
  items() {
    if (!this.#sortedCache) {
      this.#sortedCache = [...this.#items.values()].sort(compareItems);
    }
    return this.#sortedCache;
  }

  get(key) {
    return this.#items.get(key);
  }

  byClientMessageId(clientMessageId) {
    return this.#byClientId.get(clientMessageId);
  }

  /** True when the bridge has committed this message (it has a `seq`). */
  isCommitted(clientMessageId) {
    return isSeq(this.#byClientId.get(clientMessageId)?.seq);
  }

  // ---- the server's stream -------------------------------------------------

  /**
   * Applies one server `message` (live, replayed or from `history`).
   * Returns true when it changed the transcript, false for a duplicate or a
   * malformed message.
   */
  applyMessage(msg) {
    const changed = this.#mergeMessage(msg);
    if (changed !== null) this.#changed();
    return Boolean(changed);
  }

  /** Applies many messages (a `session` or a `history` page) with one change notification. */
  applyMessages(list) {
    let any = false;
    let touched = false;
    for (const msg of Array.isArray(list) ? list : []) {
      const changed = this.#mergeMessage(msg);
      if (changed !== null) touched = true;
      any = any || Boolean(changed);
    }
    if (touched) this.#changed();
    return any;
  }

  /** Returns true (new), false (duplicate seen again: only the watermark may move), null (ignored). */
  #mergeMessage(msg) {
    if (!msg || typeof msg !== 'object' || !isSeq(msg.seq)) return null;
    const seq = msg.seq;
    const raisedWatermark = seq > this.#lastSeq;
    if (raisedWatermark) this.#lastSeq = seq;
    if (this.#bySeq.has(seq)) return raisedWatermark ? false : null;

    const clientMessageId = typeof msg.clientMessageId === 'string' && msg.clientMessageId ? msg.clientMessageId : null;
    const existing = clientMessageId ? this.#byClientId.get(clientMessageId) : undefined;
    if (existing) {
      if (isSeq(existing.seq)) return raisedWatermark ? false : null; // same message, other seq: keep the first
      // Our own message, committed: the echo or a replay overtook the ack.
      this.#commit(existing, msg);
      return true;
    }

    const direction = DIRECTIONS.has(msg.direction) ? msg.direction : 'system';
    const item = {
      key: messageKey(clientMessageId, seq),
      kind: 'message',
      seq,
      clientMessageId,
      conversationId: msg.conversationId ?? null,
      direction,
      author: typeof msg.author === 'string' ? msg.author : '',
      body: typeof msg.body === 'string' ? msg.body : '',
      attachment: readAttachment(msg.attachment),
      createdAt: msg.createdAt ?? null,
      status: direction === 'customer' ? Status.sent : null,
      error: null,
      note: null,
      order: this.#order++,
    };
    this.#insert(item);
    return true;
  }

  /** A `delivery` event: the bridge handed the message to Flex, or Flex refused it. */
  applyDelivery(event) {
    if (!event || typeof event !== 'object') return false;
    const item =
      (event.clientMessageId && this.#byClientId.get(event.clientMessageId)) ||
      (isSeq(event.seq) ? this.#bySeq.get(event.seq) : undefined);
    if (!item || item.direction !== 'customer') return false;
    const status = event.status === 'delivered' ? Status.delivered : event.status === 'failed' ? Status.failed : null;
    if (!status) return false;
    if (!isSeq(item.seq) && isSeq(event.seq)) {
      item.seq = event.seq;
      this.#indexSeq(item);
    }
    const next = advance(item.status, status);
    const error = status === Status.failed ? describeError(event.error) : item.error;
    if (next === item.status && error === item.error) return false;
    item.status = next;
    item.error = next === Status.failed ? error : item.error;
    item.note = null;
    this.#changed();
    return true;
  }

  /** The latest state of a conversation (`session.conversation` or a `conversation` event). */
  setConversation(conv) {
    if (!conv || typeof conv !== 'object' || typeof conv.id !== 'string') return false;
    const agent = conv.agent && typeof conv.agent.name === 'string' ? { name: conv.agent.name } : null;
    const known = this.#conversation?.id === conv.id ? this.#conversation : null;
    this.#conversation = {
      id: conv.id,
      state: conv.state,
      agent,
      createdAt: typeof conv.createdAt === 'string' ? conv.createdAt : (known?.createdAt ?? null),
      closeReason: typeof conv.closeReason === 'string' ? conv.closeReason : (known?.closeReason ?? null),
    };
    if (conv.state === 'closed') {
      const reason = this.#conversation.closeReason;
      const endedBy = reason === 'agent_ended' ? (agent?.name ?? null) : null;
      this.#addNotice({ ...endedNotice(conv.id), reason, endedBy });
    }
    this.#changed();
    return true;
  }

  /** `agent:joined {conversationId, agentName}`. */
  agentJoined({ conversationId, agentName } = {}) {
    if (typeof agentName !== 'string' || !agentName) return false;
    const conv = this.#conversation;
    if (conv && conv.id === conversationId) {
      this.#conversation = { ...conv, agent: { name: agentName } };
      if (conv.state !== 'closed') this.#conversation.state = 'open';
    } else if (typeof conversationId === 'string') {
      this.#conversation = { id: conversationId, state: 'open', agent: { name: agentName } };
    }
    this.#addNotice({
      key: `n:joined:${conversationId}:${agentName}`,
      type: NoticeType.agentJoined,
      conversationId: conversationId ?? null,
      agentName,
    });
    this.#changed();
    return true;
  }

  /** `chat:ended {conversationId, reason, endedBy}`. */
  chatEnded({ conversationId, reason, endedBy } = {}) {
    if (typeof conversationId !== 'string') return false;
    const conv = this.#conversation;
    const same = conv && conv.id === conversationId;
    const agent = same ? conv.agent : null;
    this.#conversation = {
      id: conversationId,
      state: 'closed',
      agent,
      createdAt: same ? conv.createdAt : null,
      closeReason: reason ?? null,
    };
    const who = typeof endedBy === 'string' && endedBy ? endedBy : reason === 'agent_ended' ? (agent?.name ?? null) : null;
    const notice = this.#items.get(endedKey(conversationId));
    if (notice && !notice.reason) {
      // The `conversation` event (closed) came first: tell who ended it.
      notice.reason = reason ?? null;
      notice.endedBy = who;
    }
    this.#addNotice({ ...endedNotice(conversationId), reason: reason ?? null, endedBy: who });
    this.#changed();
    return true;
  }

  /** The customer chose "start a new chat": the ended notice stays, its button goes. */
  dismissEnded() {
    let changed = false;
    for (const item of this.#items.values()) {
      if (item.kind === 'notice' && item.type === NoticeType.chatEnded && !item.dismissed) {
        item.dismissed = true;
        changed = true;
      }
    }
    if (changed) this.#changed();
    return changed;
  }

  // ---- the customer's own messages ------------------------------------------

  /** Shows a message the customer just wrote (or one restored from the outbox) as "sending". */
  addOutgoing({ clientMessageId, body, createdAt = null, author = '', attachment = null }) {
    if (this.#byClientId.has(clientMessageId)) return false;
    this.dismissEnded();
    this.#insert({
      key: messageKey(clientMessageId, null),
      kind: 'message',
      seq: null,
      clientMessageId,
      conversationId: null,
      direction: 'customer',
      author,
      body,
      attachment: readAttachment(attachment),
      createdAt,
      status: Status.sending,
      error: null,
      note: null,
      order: this.#order++,
    });
    this.#changed();
    return true;
  }

  /** The `message` ack said `ok`: the bridge committed it. */
  markAcked(clientMessageId, ok = {}) {
    const item = this.#byClientId.get(clientMessageId);
    if (!item) return false;
    if (!isSeq(item.seq) && isSeq(ok.seq)) {
      const other = this.#bySeq.get(ok.seq);
      if (other && other !== item) {
        // The stream delivered this seq without our id: it is the same message.
        this.#remove(other);
      }
      item.seq = ok.seq;
      this.#indexSeq(item);
    }
    item.conversationId = ok.conversationId ?? item.conversationId;
    item.createdAt = ok.createdAt ?? item.createdAt;
    item.status = advance(item.status, Status.sent);
    item.error = item.status === Status.failed ? item.error : null;
    item.note = null;
    this.#changed();
    return true;
  }

  /** Still trying: a retryable error or a lost ack, with a short human note. */
  markRetrying(clientMessageId, note) {
    const item = this.#byClientId.get(clientMessageId);
    if (!item || item.status !== Status.sending || item.note === note) return false;
    item.note = note;
    this.#changed();
    return true;
  }

  /** The `message` ack said `error` for good: show why next to the message. */
  markRejected(clientMessageId, error) {
    const item = this.#byClientId.get(clientMessageId);
    if (!item || isSeq(item.seq)) return false;
    item.status = Status.rejected;
    item.error = describeError(error);
    item.note = null;
    // It will never get a seq: pin it where it was written instead of letting
    // it trail every later message.
    item.afterSeq = this.#maxSeq;
    this.#changed();
    return true;
  }

  // ---- persistence -----------------------------------------------------------

  /**
   * What survives a reload: committed messages and notices (the newest
   * `limit`), the resume point and the conversation. Messages still sending
   * belong to the tab's outbox, not here.
   */
  snapshot(limit = SNAPSHOT_LIMIT) {
    const committed = this.items().filter((item) => item.kind === 'notice' || isSeq(item.seq));
    const kept = committed.slice(Math.max(0, committed.length - limit)).map(stripItem);
    return {
      version: 1,
      customerId: this.customerId,
      lastSeq: this.#lastSeq,
      conversation: this.#conversation,
      items: kept,
    };
  }

  /** Loads a snapshot (normally of this customer) on top of an empty or live store. */
  restore(snapshot) {
    if (!snapshot || snapshot.version !== 1 || snapshot.customerId !== this.customerId) return false;
    for (const raw of Array.isArray(snapshot.items) ? snapshot.items : []) {
      if (!raw || typeof raw !== 'object') continue;
      if (raw.kind === 'notice') {
        if (typeof raw.key !== 'string') continue;
        const existing = this.#items.get(raw.key);
        if (!existing) this.#insert({ ...raw, order: this.#order++ });
        else if (raw.dismissed) existing.dismissed = true;
        continue;
      }
      if (!isSeq(raw.seq)) continue;
      const cid = typeof raw.clientMessageId === 'string' && raw.clientMessageId ? raw.clientMessageId : null;
      const known = this.#bySeq.get(raw.seq) ?? (cid ? this.#byClientId.get(cid) : undefined);
      if (!known) {
        this.#insert({ ...raw, key: messageKey(cid, raw.seq), clientMessageId: cid, note: null, order: this.#order++ });
        continue;
      }
      if (!isSeq(known.seq)) this.#commit(known, raw);
      if (known.direction === 'customer' && raw.status) {
        const next = advance(known.status, raw.status);
        if (next !== known.status) {
          known.status = next;
          if (next === Status.failed) known.error = raw.error ?? known.error;
        }
      }
    }
    if (isSeq(snapshot.lastSeq) && snapshot.lastSeq > this.#lastSeq) this.#lastSeq = snapshot.lastSeq;
    if (!this.#conversation && snapshot.conversation && typeof snapshot.conversation.id === 'string') {
      this.#conversation = snapshot.conversation;
    }
    this.#changed();
    return true;
  }

  // ---- internals -------------------------------------------------------------

  /** Gives an uncommitted message of ours the server's `seq` and fields. Never moves `lastSeq`. */
  #commit(item, msg) {
    item.seq = msg.seq;
    item.createdAt = msg.createdAt ?? item.createdAt;
    item.conversationId = msg.conversationId ?? item.conversationId;
    if (typeof msg.body === 'string') item.body = msg.body;
    if (typeof msg.author === 'string' && msg.author) item.author = msg.author;
    item.note = null;
    if (item.status === Status.rejected) item.error = null;
    item.status = advance(item.status, Status.sent);
    this.#indexSeq(item);
  }

  #addNotice(fields) {
    if (this.#items.has(fields.key)) return false;
    this.#insert({ kind: 'notice', afterSeq: this.#maxSeq, dismissed: false, ...fields, order: this.#order++ });
    return true;
  }

  #insert(item) {
    this.#items.set(item.key, item);
    if (item.clientMessageId) this.#byClientId.set(item.clientMessageId, item);
    if (isSeq(item.seq)) this.#indexSeq(item);
  }

  #indexSeq(item) {
    this.#bySeq.set(item.seq, item);
    if (item.seq > this.#maxSeq) this.#maxSeq = item.seq;
  }

  #remove(item) {
    this.#items.delete(item.key);
    if (isSeq(item.seq) && this.#bySeq.get(item.seq) === item) this.#bySeq.delete(item.seq);
    if (item.clientMessageId && this.#byClientId.get(item.clientMessageId) === item) {
      this.#byClientId.delete(item.clientMessageId);
    }
  }

  #changed() {
    this.#sortedCache = null;
    for (const fn of this.#listeners) fn();
  }
}

function endedKey(conversationId) {
  return `n:ended:${conversationId}`;
}

function endedNotice(conversationId) {
  return { key: endedKey(conversationId), type: NoticeType.chatEnded, conversationId };
}

/** Moves a status forward, never back (a late ack must not undo "delivered"). */
function advance(current, next) {
  return RANK[next] > (RANK[current] ?? -1) ? next : current;
}

function describeError(error) {
  if (!error) return 'Unknown error';
  if (typeof error === 'string') return error;
  return String(error.message || error.code || 'Unknown error');
}

/** Sort key: committed messages by seq, notices right after the seq they followed, uncommitted last. */
function sortKey(item) {
  if (item.kind === 'notice') return [item.afterSeq ?? 0, 1, item.order];
  if (isSeq(item.seq)) return [item.seq, 0, 0];
  if (item.status === Status.rejected) return [item.afterSeq ?? 0, 1, item.order];
  return [Number.POSITIVE_INFINITY, 2, item.order];
}

function compareItems(a, b) {
  const ka = sortKey(a);
  const kb = sortKey(b);
  for (let i = 0; i < 3; i += 1) {
    if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
  }
  return 0;
}

function stripItem(item) {
  const { order: _order, note: _note, ...rest } = item;
  return rest;
}

/**
 * Merges two snapshots of one customer (this tab's and what another tab saved)
 * so neither tab's writes erase the other's: the union of items by key and seq,
 * the higher resume point, the newest `limit` items.
 */
export function mergeSnapshots(a, b, limit = SNAPSHOT_LIMIT) {
  if (!a || a.version !== 1) return b;
  if (!b || b.version !== 1 || b.customerId !== a.customerId) return a;
  const store = new ChatStore({ customerId: a.customerId });
  store.restore(a);
  store.restore(b);
  const merged = store.snapshot(limit);
  merged.conversation = a.conversation ?? b.conversation ?? null;
  return merged;
}
