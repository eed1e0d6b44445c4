// The outbox of one tab: the customer's messages on their way to the bridge.
//
// - One message is in flight at a time, in the order written, so the bridge
//   commits (and numbers) them in the order the customer typed them.
// - A message is done when the bridge has committed it: its `message` ack says
//   `ok`, or its `seq` reached the store some other way (the live echo or a
//   replay after a reconnect can overtake a lost ack).
// - A lost ack (timeout, or the socket dropped) re-emits the SAME
//   `clientMessageId`: the bridge stores it once and acks the original `seq`.
//   Retries back off (1 s, 2 s, 4 s … 30 s) while connected and wait while not;
//   a retryable ack error (`rate_limited`, `internal`) backs off the same way.
//   The customer's words are never dropped silently: a message leaves the
//   outbox only committed or refused for good (shown with the reason).
// - Pure logic: the socket (`transmit`), the clock (`schedule`) and the store
//   are handed in, so tests drive every path without a network or real time.

import { isRetryableError, readAck } from './protocol.js';

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_MAX_MS = 30_000;

/** Delay before attempt `attempts + 1`, with ±20 % jitter so tabs do not retry in step. */
export function backoffDelay(attempts, random = Math.random) {
  const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
  const jitter = 0.8 + 0.4 * random();
  return Math.round(Math.min(BACKOFF_MAX_MS, exp * jitter));
}

function defaultSchedule(fn, ms) {
  const timer = setTimeout(fn, ms);
  return () => clearTimeout(timer);
}

export class Sender {
  /**
   * @param {object} deps
   * @param {import('./store.js').ChatStore} deps.store
   * @param {(payload: {clientMessageId: string, body: string}) => Promise<unknown>} deps.transmit
   *   emits `message` and resolves with the raw ack; rejects when no ack came (timeout, disconnect).
   * @param {(fn: () => void, ms: number) => () => void} [deps.schedule] runs `fn` after `ms`; returns a cancel function.
   * @param {(attempts: number) => number} [deps.backoff] delay before the next attempt.
   * @param {() => string} [deps.newId] a fresh clientMessageId.
   * @param {(entries: Array<{clientMessageId: string, body: string, createdAt: string}>) => void} [deps.onQueueChange]
   *   called with what is still unsent, so it can outlive a reload.
   * @param {() => string} [deps.now] current time as ISO 8601.
   */
  constructor({
    store,
    transmit,
    schedule = defaultSchedule,
    backoff = backoffDelay,
    newId = () => crypto.randomUUID(),
    onQueueChange = () => {},
    now = () => new Date().toISOString(),
  }) {
    this.#store = store;
    this.#transmit = transmit;
    this.#schedule = schedule;
    this.#backoff = backoff;
    this.#newId = newId;
    this.#onQueueChange = onQueueChange;
    this.#now = now;
  }

  #store;
  #transmit;
  #schedule;
  #backoff;
  #newId;
  #onQueueChange;
  #now;
  /** @type {Array<{clientMessageId: string, body: string, createdAt: string, attempts: number}>} */
  #queue = [];
  #online = false;
  /** The attempt awaiting its ack: `{entry, token}`; cleared only when that attempt settles. */
  #inFlight = null;
  #attemptToken = 0;
  #cancelRetry = null;

  /** Queues a new message; returns its clientMessageId. `body` is already checked (protocol.checkBody). */
  send(body, { author = '', attachment = null } = {}) {
    const entry = { clientMessageId: this.#newId(), body, createdAt: this.#now(), attempts: 0, attachment };
    this.#store.addOutgoing({ ...entry, author });
    this.#queue.push(entry);
    this.#queueChanged();
    this.#pump();
    return entry.clientMessageId;
  }

  /** Puts back messages a previous page of this tab had not seen committed (after a reload). */
  restore(entries, { author = '' } = {}) {
    for (const raw of Array.isArray(entries) ? entries : []) {
      if (!raw || typeof raw.clientMessageId !== 'string' || typeof raw.body !== 'string') continue;
      if (this.#queue.some((e) => e.clientMessageId === raw.clientMessageId)) continue;
      const entry = {
        clientMessageId: raw.clientMessageId,
        body: raw.body,
        createdAt: typeof raw.createdAt === 'string' ? raw.createdAt : this.#now(),
        attempts: 0,
        attachment: raw.attachment && typeof raw.attachment.id === 'string' ? raw.attachment : null,
      };
      if (!this.#store.isCommitted(entry.clientMessageId)) {
        this.#store.addOutgoing({ ...entry, author });
      }
      this.#queue.push(entry);
    }
    this.#queueChanged();
    this.#pump();
  }

  /**
   * The socket can carry messages (true: connected and the session applied)
   * or not. Coming online retries at once instead of waiting out a backoff.
   */
  setOnline(online) {
    this.#online = online;
    this.#clearRetry();
    if (online) this.#pump();
  }

  /** Unsent entries, oldest first (for tests and persistence). */
  pending() {
    return this.#queue.map(({ clientMessageId, body, createdAt, attachment }) =>
      attachment ? { clientMessageId, body, createdAt, attachment } : { clientMessageId, body, createdAt },
    );
  }

  /** Drops every queued message (the customer changed: a new identity has its own outbox). */
  clear() {
    this.#queue = [];
    this.#clearRetry();
    this.#queueChanged();
  }

  get busy() {
    return this.#inFlight !== null;
  }

  #pump() {
    if (!this.#online || this.#inFlight || this.#cancelRetry) return;
    this.#dropDone();
    const entry = this.#queue[0];
    if (!entry) return;
    entry.attempts += 1;
    const token = ++this.#attemptToken;
    this.#inFlight = { entry, token };
    let result;
    try {
      // A file's message names the upload; its text is the file's name.
      const payload = entry.attachment
        ? { clientMessageId: entry.clientMessageId, attachment: entry.attachment.id }
        : { clientMessageId: entry.clientMessageId, body: entry.body };
      result = Promise.resolve(this.#transmit(payload));
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (ack) => this.#settled(token, () => this.#answered(entry, ack)),
      () => this.#settled(token, () => this.#lost(entry)),
    );
  }

  #settled(token, handle) {
    if (!this.#inFlight || this.#inFlight.token !== token) return;
    this.#inFlight = null;
    handle();
    this.#pump();
  }

  #answered(entry, ack) {
    const answer = readAck(ack);
    if ('ok' in answer) {
      this.#store.markAcked(entry.clientMessageId, answer.ok ?? {});
      this.#finish(entry);
    } else if (isRetryableError(answer.error)) {
      this.#store.markRetrying(entry.clientMessageId, `${answer.error.message} Retrying…`);
      this.#retryLater(entry);
    } else {
      this.#store.markRejected(entry.clientMessageId, answer.error);
      this.#finish(entry);
    }
  }

  #lost(entry) {
    if (this.#store.isCommitted(entry.clientMessageId)) {
      this.#finish(entry);
      return;
    }
    this.#store.markRetrying(entry.clientMessageId, 'No answer from the server yet. Retrying…');
    if (this.#online) this.#retryLater(entry);
    // Offline: setOnline(true) resumes with the same entry.
  }

  #retryLater(entry) {
    this.#clearRetry();
    const cancel = this.#schedule(() => {
      if (this.#cancelRetry === cancel) this.#cancelRetry = null;
      this.#pump();
    }, this.#backoff(entry.attempts));
    this.#cancelRetry = cancel;
  }

  #clearRetry() {
    if (this.#cancelRetry) {
      const cancel = this.#cancelRetry;
      this.#cancelRetry = null;
      cancel();
    }
  }

  #finish(entry) {
    const index = this.#queue.indexOf(entry);
    if (index >= 0) this.#queue.splice(index, 1);
    this.#queueChanged();
  }

  /** Drops queued messages the store already shows committed (echo or replay before the ack). */
  #dropDone() {
    const before = this.#queue.length;
    this.#queue = this.#queue.filter((e) => !this.#store.isCommitted(e.clientMessageId));
    if (this.#queue.length !== before) this.#queueChanged();
  }

  #queueChanged() {
    this.#onQueueChange(this.pending());
  }
}
