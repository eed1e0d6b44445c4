// The web chat's controller: who the customer is, the socket's life, and the
// actions the page offers (register, send, end the chat, start a new chat). It owns the
// store, the outbox and what is kept in the browser; it never touches the DOM
// (view.js renders its state), and the socket is handed in, so tests drive it
// with a fake socket.
//
// Life of a page:
//   no stored token   → phase "name": the socket connects anonymously; the
//                       customer types a name → `register` → token stored → "chat"
//   stored token      → phase "chat" at once, the stored transcript shown; the
//                       socket connects with `auth: {token, lastSeq}` and the
//                       `session` replays what this browser has not seen
//   `invalid_token`   → forget the identity and its transcript, back to "name",
//                       saying that the previous chat has expired
// Every connection attempt (first, reconnect, manual) reads `auth` afresh, so
// `lastSeq` is always the newest and the replay minimal.

import { checkFile, fetchFile, upload } from './files.js';
import { translator } from './i18n.js';
import { BODY_MAX_CHARS, charCount, checkName, Emit, INVALID_TOKEN, On, PAGE_LIMIT, readAck } from './protocol.js';
import { backoffDelay, Sender } from './sender.js';
import { ChatStore } from './store.js';
import {
  forgetCustomer,
  loadCustomer,
  loadOutbox,
  loadTranscript,
  saveCustomer,
  saveOutbox,
  saveTranscript,
} from './persist.js';

export const Phase = Object.freeze({ name: 'name', chat: 'chat' });

export const Connection = Object.freeze({
  connecting: 'connecting',
  connected: 'connected',
  reconnecting: 'reconnecting',
  /** Not connected and not retrying by itself (a retry is scheduled by the app). */
  offline: 'offline',
});

export const ACK_TIMEOUT_MS = 10_000;
const SAVE_DELAY_MS = 250;

function defaultSchedule(fn, ms) {
  const timer = setTimeout(fn, ms);
  return () => clearTimeout(timer);
}

export class ChatApp {
  /**
   * @param {object} deps
   * @param {(auth: (cb: (data: object) => void) => void) => any} deps.createSocket
   *   makes a socket.io-client Socket (autoConnect off) whose handshake `auth` is the given function.
   * @param {import('./persist.js').JsonStorage} deps.local localStorage
   * @param {import('./persist.js').JsonStorage} deps.session sessionStorage
   * @param {(fn: () => void, ms: number) => () => void} [deps.schedule]
   * @param {() => string} [deps.newId] fresh clientMessageIds
   * @param {number} [deps.ackTimeoutMs]
   * @param {(key: string, vars?: object) => string} [deps.t] the page's words (i18n.js)
   * @param {typeof fetch} [deps.fetch] for the transcript
   */
  constructor({
    createSocket,
    local,
    session,
    schedule = defaultSchedule,
    newId,
    ackTimeoutMs = ACK_TIMEOUT_MS,
    t = translator('en'),
    fetch: fetchImpl = globalThis.fetch?.bind(globalThis),
    upload: uploadImpl = upload,
  }) {
    this.t = t;
    this.#fetch = fetchImpl;
    this.#upload = uploadImpl;
    this.#createSocket = createSocket;
    this.#local = local;
    this.#session = session;
    this.#schedule = schedule;
    this.#ackTimeoutMs = ackTimeoutMs;
    this.store = new ChatStore();
    this.store.subscribe(() => {
      this.#scheduleSave();
      this.#notify();
    });
    this.sender = new Sender({
      store: this.store,
      transmit: (payload) => this.#emit(Emit.message, payload),
      schedule,
      ...(newId ? { newId } : {}),
      onQueueChange: (entries) => {
        if (this.#customer) saveOutbox(this.#session, this.#customer.customerId, entries);
      },
    });
  }

  #fetch;
  #upload;
  #createSocket;
  #local;
  #session;
  #schedule;
  #ackTimeoutMs;
  #listeners = new Set();
  /** `{token, customerId, name}` once known. */
  #customer = null;
  #socket = null;
  #cancelSave = null;
  #cancelReconnect = null;
  /** Consecutive connections refused or cut by the server, for the manual reconnect backoff. */
  #refusals = 0;

  /** What the view shows besides the transcript. */
  state = {
    phase: Phase.name,
    connection: Connection.connecting,
    registering: false,
    /** Why the last register attempt failed, for the form. */
    nameError: null,
    /** The form's fields the bridge refused: field name → error code (`required`, `invalid_email`, …). */
    fieldErrors: {},
    /** The stored identity was refused (`invalid_token`): the previous chat has expired. */
    expired: false,
    /** `{id, name}` of the customer once known. */
    customer: null,
    /** "End chat" was clicked and waits for the customer's confirmation. */
    confirmingEnd: false,
    /** `chat:end` is on its way. */
    ending: false,
    /** Why the last `chat:end` failed, shown next to the confirmation. */
    endError: null,
  };

  subscribe(fn) {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get socket() {
    return this.#socket;
  }

  /** Loads what this browser kept and connects. */
  start() {
    const customer = loadCustomer(this.#local);
    if (customer) this.#adopt(customer);
    this.#socket = this.#createSocket((cb) => cb(this.#auth()));
    this.#wire(this.#socket);
    this.#socket.connect();
    this.#notify();
  }

  /** Stops timers and the socket, and saves (page unload, tests). */
  stop() {
    this.flush();
    this.#cancelReconnect?.();
    this.#cancelReconnect = null;
    this.sender.setOnline(false);
    this.#socket?.disconnect();
  }

  /** Writes the transcript now instead of after the debounce (e.g. on `pagehide`). */
  flush() {
    if (this.#cancelSave) {
      this.#cancelSave();
      this.#cancelSave = null;
    }
    if (this.#customer && this.store.customerId === this.#customer.customerId) {
      saveTranscript(this.#local, this.store.snapshot());
    }
  }

  /**
   * The pre-engagement form was submitted: `{name, email?, question?,
   * topic?}` (or just the name). Resolves when the attempt is over (state
   * tells how: `nameError` for the form, `fieldErrors` per field).
   */
  async register(answers) {
    if (this.state.registering || this.state.phase !== Phase.name) return;
    const form = typeof answers === 'string' ? { name: answers } : (answers ?? {});
    const checked = checkName(form.name);
    if (checked.error) {
      this.#set({ nameError: this.t('nameRequired'), fieldErrors: { name: checked.error } });
      return;
    }
    const payload = { name: checked.ok };
    for (const field of ['email', 'question', 'topic']) {
      const value = typeof form[field] === 'string' ? form[field].trim() : '';
      if (value) payload[field] = value;
    }
    this.#set({ registering: true, nameError: null, fieldErrors: {} });
    const answer = await this.#request(Emit.register, payload);
    if ('ok' in answer && answer.ok && typeof answer.ok.token === 'string') {
      const { customerId, token, name } = answer.ok;
      const customer = { customerId: String(customerId), token, name: typeof name === 'string' ? name : checked.ok };
      saveCustomer(this.#local, customer);
      this.#adopt(customer);
      this.#set({ registering: false, expired: false });
      this.#goOnlineIfBound();
      return;
    }
    const error = answer.error ?? { code: 'invalid_ack', message: 'Unexpected answer from the chat server.' };
    if (error.code === 'timeout' || error.code === 'already_registered') {
      // The server may have bound this socket to a customer whose token never
      // reached us: start over on a fresh, anonymous connection.
      this.#reconnectNow();
    }
    const fieldErrors = {};
    for (const [field, detail] of Object.entries(error.fields ?? {})) {
      fieldErrors[field] = typeof detail?.code === 'string' ? detail.code : 'invalid';
    }
    this.#set({ registering: false, nameError: error.message, fieldErrors });
  }

  /**
   * The send box was submitted. Returns `{ok: clientMessageId}`, `{empty: true}`
   * (nothing to send) or `{error: text}` (too long; the text stays in the box).
   */
  send(rawText) {
    if (this.state.phase !== Phase.chat) return { error: this.t('enterNameFirst') };
    const body = String(rawText ?? '').trim();
    if (!body) return { empty: true };
    const n = charCount(body);
    if (n > BODY_MAX_CHARS) return { error: this.t('tooLong', { n, max: BODY_MAX_CHARS }) };
    const checked = { ok: body };
    return { ok: this.sender.send(checked.ok, { author: this.#customer?.name ?? '' }) };
  }

  /**
   * Uploads `file` (checked against `settings` first) and sends it as a
   * message once stored: `{ok: clientMessageId}` or `{error: text}`.
   * `onProgress(fraction)` follows the upload.
   */
  async sendFile(file, settings, onProgress = () => {}) {
    if (this.state.phase !== Phase.chat || !this.#customer) return { error: this.t('enterNameFirst') };
    const checked = checkFile(file, settings);
    if (checked.error) return { error: this.t(checked.error, checked.vars) };
    const uploaded = await this.#upload(file, this.#customer.token, onProgress);
    if (uploaded.error) return { error: this.t('uploadFailed', { name: file.name, reason: uploaded.error.message }) };
    const attachment = uploaded.ok;
    return { ok: this.sender.send(attachment.name, { author: this.#customer.name ?? '', attachment }) };
  }

  /** The bytes of one of the customer's files, as a Blob (null if refused). */
  file(id) {
    return this.#customer ? fetchFile(id, this.#customer.token, this.#fetch) : Promise.resolve(null);
  }

  /** Whether "End chat" applies: the latest conversation is opening or open. */
  get canEndChat() {
    const conv = this.store.conversation;
    return this.state.phase === Phase.chat && Boolean(conv) && conv.state !== 'closed';
  }

  /** "End chat" was clicked: ask the customer to confirm first. */
  askEndChat() {
    if (this.canEndChat) this.#set({ confirmingEnd: true, endError: null });
  }

  /** The customer changed their mind. */
  cancelEndChat() {
    this.#set({ confirmingEnd: false, endError: null });
  }

  /**
   * Confirmed: `chat:end`. What the customer sent before still reaches the
   * agent; every tab then shows the chat as ended (the bridge's `chat:ended`,
   * applied here at once too). Resolves when answered; state tells how.
   */
  async endChat() {
    if (this.state.ending || !this.canEndChat) return;
    this.#set({ ending: true, endError: null });
    const answer = await this.#request(Emit.chatEnd, {});
    if ('ok' in answer) {
      const conversationId = answer.ok?.conversationId;
      if (answer.ok?.ended && typeof conversationId === 'string') {
        this.store.chatEnded({ conversationId, reason: 'customer_ended' });
      }
      this.#set({ ending: false, confirmingEnd: false });
      return;
    }
    this.#set({ ending: false, endError: answer.error.message });
  }

  /**
   * The transcript of the latest conversation (or `conversationId`), as
   * the bridge renders it: `{ok: {text, filename}}` or `{error: text}`.
   */
  async transcript(conversationId) {
    if (!this.#customer || !this.#fetch) return { error: this.t('transcriptFailed') };
    const query = conversationId ? `?conversation=${encodeURIComponent(conversationId)}` : '';
    try {
      const response = await this.#fetch(`transcript${query}`, {
        headers: { Authorization: `Bearer ${this.#customer.token}` },
        cache: 'no-store',
      });
      if (!response.ok) return { error: this.t('transcriptFailed') };
      const disposition = response.headers.get('content-disposition') ?? '';
      const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'chat-transcript.txt';
      return { ok: { text: await response.text(), filename } };
    } catch {
      return { error: this.t('transcriptFailed') };
    }
  }

  /** "Start a new chat": the next message opens a new conversation (the bridge does that). */
  newChat() {
    this.store.dismissEnded();
  }

  /**
   * Another tab registered while this one shows the name form: use its
   * identity instead of asking again.
   */
  adoptStoredCustomer() {
    if (this.#customer || this.state.registering) return false;
    const customer = loadCustomer(this.#local);
    if (!customer) return false;
    this.#adopt(customer);
    this.#reconnectNow();
    this.#notify();
    return true;
  }

  // ---- socket ------------------------------------------------------------------

  #auth() {
    if (!this.#customer) return {};
    return { token: this.#customer.token, lastSeq: this.store.lastSeq };
  }

  #emit(event, payload) {
    return this.#socket.timeout(this.#ackTimeoutMs).emitWithAck(event, payload);
  }

  /** Emits and reads the ack; no answer in time is a `timeout` error the page can show. */
  async #request(event, payload) {
    try {
      return readAck(await this.#emit(event, payload));
    } catch {
      return { error: { code: 'timeout', message: this.t('noAnswer') } };
    }
  }

  #wire(socket) {
    socket.on('connect', () => this.#set({ connection: Connection.connected }));
    socket.on('disconnect', (reason) => {
      this.sender.setOnline(false);
      if (socket.active) {
        this.#set({ connection: Connection.reconnecting });
      } else if (reason === 'io server disconnect') {
        // The server closed this socket on purpose; socket.io-client will not retry.
        this.#set({ connection: Connection.offline });
        this.#reconnectLater();
      } else {
        this.#set({ connection: Connection.offline }); // we closed it (stop, reconnectNow)
      }
    });
    socket.on('connect_error', (error) => {
      if (error?.message === INVALID_TOKEN) {
        this.#forget();
        this.#reconnectNow();
        return;
      }
      if (socket.active) {
        this.#set({ connection: Connection.reconnecting }); // socket.io-client retries with backoff
      } else {
        this.#set({ connection: Connection.offline }); // refused by the server: retry ourselves
        this.#reconnectLater();
      }
    });
    socket.io?.on?.('reconnect_attempt', () => {
      if (this.state.connection !== Connection.connected) this.#set({ connection: Connection.reconnecting });
    });

    socket.on(On.session, (payload) => this.#onSession(payload));
    socket.on(On.message, (msg) => this.store.applyMessage(msg));
    socket.on(On.conversation, (conv) => this.store.setConversation(conv));
    socket.on(On.agentJoined, (event) => this.store.agentJoined(event));
    socket.on(On.chatEnded, (event) => this.store.chatEnded(event));
    socket.on(On.delivery, (event) => this.store.applyDelivery(event));
  }

  async #onSession(payload) {
    const customerId = payload?.customer?.id;
    if (typeof customerId !== 'string') return;
    this.#refusals = 0;
    if (this.store.customerId !== customerId) {
      // A fresh registration (the session can overtake the register ack).
      this.store.reset(customerId);
    }
    const name = typeof payload.customer.name === 'string' ? payload.customer.name : '';
    this.#set({ customer: { id: customerId, name }, connection: Connection.connected });
    if (payload.conversation) this.store.setConversation(payload.conversation);
    const messages = Array.isArray(payload.messages) ? payload.messages : [];
    this.store.applyMessages(messages);
    if (messages.length >= PAGE_LIMIT) await this.#catchUp();
    this.#goOnlineIfBound();
  }

  /** `session` carries at most a page: fetch the rest with `history`. */
  async #catchUp() {
    for (;;) {
      const answer = await this.#request(Emit.history, { since: this.store.lastSeq, limit: PAGE_LIMIT });
      const messages = answer.ok?.messages;
      // An error or no answer: the next reconnect replays from lastSeq anyway.
      if (!Array.isArray(messages)) return;
      this.store.applyMessages(messages);
      if (messages.length < PAGE_LIMIT) return;
    }
  }

  /** Messages may flow once the socket belongs to the stored customer. */
  #goOnlineIfBound() {
    const bound =
      this.#customer && this.#socket?.connected && this.state.customer?.id === this.#customer.customerId;
    if (bound) this.sender.setOnline(true);
  }

  #reconnectNow() {
    this.#cancelReconnect?.();
    this.#cancelReconnect = null;
    this.sender.setOnline(false);
    this.#socket.disconnect();
    this.#set({ connection: Connection.connecting });
    this.#socket.connect();
  }

  #reconnectLater() {
    if (this.#cancelReconnect) return;
    this.#refusals += 1;
    this.#cancelReconnect = this.#schedule(() => {
      this.#cancelReconnect = null;
      if (!this.#socket.connected && !this.#socket.active) {
        this.#set({ connection: Connection.reconnecting });
        this.#socket.connect();
      }
    }, backoffDelay(this.#refusals));
  }

  // ---- identity and persistence ------------------------------------------------

  #adopt(customer) {
    const outbox = loadOutbox(this.#session, customer.customerId);
    if (this.store.customerId !== customer.customerId) {
      this.#customer = null; // so clearing the old queue writes nothing over the new one
      this.sender.clear();
      this.store.reset(customer.customerId);
      this.store.restore(loadTranscript(this.#local, customer.customerId));
    }
    this.#customer = customer;
    this.sender.restore(outbox, { author: customer.name });
    const known = this.state.customer?.id === customer.customerId;
    this.#set({
      phase: Phase.chat,
      nameError: null,
      customer: known ? this.state.customer : { id: customer.customerId, name: customer.name },
    });
  }

  #forget() {
    const expired = Boolean(this.#customer);
    const customerId = this.#customer?.customerId ?? this.store.customerId;
    forgetCustomer(this.#local, this.#session, customerId);
    this.#customer = null;
    this.sender.clear();
    this.sender.setOnline(false);
    this.store.reset(null);
    this.#set({ phase: Phase.name, customer: null, registering: false, nameError: null, fieldErrors: {}, expired });
  }

  #scheduleSave() {
    if (this.#cancelSave || !this.#customer) return;
    this.#cancelSave = this.#schedule(() => {
      this.#cancelSave = null;
      this.flush();
    }, SAVE_DELAY_MS);
  }

  #set(patch) {
    this.state = { ...this.state, ...patch };
    this.#notify();
  }

  #notify() {
    for (const fn of this.#listeners) fn(this.state);
  }
}
