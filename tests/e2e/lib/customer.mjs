// A customer of the bridge: the official `socket.io-client` speaking the
// customer protocol (docs/protocol.md) the way any app would. It records
// every server event, emits with acknowledgements (and a timeout as a
// failure guard), and resumes with its token and the last `seq` it saw.

import { randomUUID } from 'node:crypto';

import { io } from 'socket.io-client';

import { waitFor } from './harness.mjs';

/** A failure guard for one ack, generous for a loaded machine (never a timing assertion). */
const ACK_TIMEOUT_MS = 20_000;

/** An ack of `{error: {code, message}}`. */
export class AckError extends Error {
  constructor(event, error) {
    super(`${event} answered ${error?.code}: ${error?.message}`);
    this.code = error?.code;
  }
}

/**
 * Connects a socket to the bridge and resolves once the server took it:
 * with a token, once its `session` arrived (the protocol sends it first).
 * Rejects with the `connect_error` (its `message` is the refusal code,
 * e.g. `invalid_token`).
 *
 * @param {string} url the bridge's base URL
 * @param {{token?: string, lastSeq?: number, auth?: any}} [options] `auth` replaces the handshake object verbatim
 * @returns {Promise<Customer>}
 */
export async function connectCustomer(url, { token, lastSeq, auth } = {}) {
  if (auth === undefined) {
    auth = {};
    if (token !== undefined) auth.token = token;
    if (lastSeq !== undefined) auth.lastSeq = lastSeq;
  }
  const socket = io(url, { forceNew: true, reconnection: false, auth });
  const customer = new Customer(url, socket, token);
  try {
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    if (token !== undefined) await customer.next('session');
  } catch (err) {
    socket.disconnect();
    throw err;
  }
  return customer;
}

/**
 * One socket of one customer (a tab, an app). Holds what the server sent it.
 */
export class Customer {
  /**
   * @param {string} url
   * @param {import('socket.io-client').Socket} socket
   * @param {string} [token]
   */
  constructor(url, socket, token) {
    this.url = url;
    this.socket = socket;
    this.token = token;
    /** @type {string | undefined} */
    this.id = undefined;
    /** @type {string | undefined} */
    this.name = undefined;
    /** Every server event, in arrival order: `{event, data}`; also `disconnect` `{reason}`. */
    this.events = [];
    socket.on('disconnect', (reason) => this.events.push({ event: 'disconnect', data: { reason } }));
    socket.onAny((event, data) => {
      this.events.push({ event, data });
      if (event === 'session') {
        this.id = data.customer.id;
        this.name = data.customer.name;
      }
    });
  }

  /** Emits with an ack and resolves with the raw ack (`{ok}` or `{error}`). */
  emit(event, payload) {
    return this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
  }

  /** Emits with an ack and resolves with its `ok`; an `{error}` ack rejects with AckError. */
  async request(event, payload) {
    const ack = await this.emit(event, payload);
    if (!ack.ok) throw new AckError(event, ack.error);
    return ack.ok;
  }

  /** `register {name}`; keeps the token and waits for the `session` that follows. */
  async register(name) {
    const ok = await this.request('register', { name });
    this.token = ok.token;
    await this.next('session');
    return ok;
  }

  /**
   * Sends a message and resolves with the ack's `ok` (`{seq, clientMessageId,
   * conversationId, createdAt}`); an `{error}` ack rejects with AckError.
   */
  send(body, { clientMessageId = randomUUID() } = {}) {
    return this.request('message', { clientMessageId, body });
  }

  /** `history {since}`: this customer's stored messages after `since`, oldest first. */
  async history(since = 0) {
    return (await this.request('history', { since })).messages;
  }

  /** The data of every `event` received so far, in arrival order. */
  received(event) {
    return this.events.filter((e) => e.event === event).map((e) => e.data);
  }

  /** Waits for (or finds) the first `event` whose data matches. */
  next(event, predicate = () => true, { timeout } = {}) {
    return waitFor(() => this.events.find((e) => e.event === event && predicate(e.data))?.data ?? false, {
      timeout,
      message: `customer ${this.name ?? '(anonymous)'} got no matching ${event}`,
      describe: () => `events so far: ${JSON.stringify(this.events)}`,
    });
  }

  /** Waits for the `delivery` of a message (by its ack or client message id). */
  delivered(clientMessageId, options) {
    return this.next('delivery', (d) => d.clientMessageId === clientMessageId, options);
  }

  /**
   * Every message this socket knows (`session` replays and live `message`
   * events), each `seq` once, in `seq` order, as the protocol tells a client
   * to keep them.
   */
  transcript() {
    const bySeq = new Map();
    for (const { event, data } of this.events) {
      const messages = event === 'session' ? data.messages : event === 'message' ? [data] : [];
      for (const message of messages) bySeq.set(message.seq, message);
    }
    return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  /** The bodies of the agent messages in the transcript, in order. */
  agentBodies() {
    return this.transcript()
      .filter((m) => m.direction === 'agent')
      .map((m) => m.body);
  }

  /** The highest `seq` received through the stream (what a client resumes from). */
  lastSeq() {
    return Math.max(0, ...this.transcript().map((m) => m.seq));
  }

  /** Waits until an agent message with this body is in the transcript and returns it. */
  agentMessage(body, options) {
    return waitFor(() => this.transcript().find((m) => m.direction === 'agent' && m.body === body), {
      message: `customer ${this.name} never got the agent message ${JSON.stringify(body)}`,
      describe: () => `transcript: ${JSON.stringify(this.transcript())}`,
      ...options,
    });
  }

  /** Closes the socket (the server sees a disconnect). */
  disconnect() {
    this.socket.disconnect();
  }

  /** A new socket for the same customer with its token and last `seq` (a reload, a reconnect). */
  reconnect({ url = this.url, lastSeq = this.lastSeq() } = {}) {
    return connectCustomer(url, { token: this.token, lastSeq });
  }
}
