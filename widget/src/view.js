// The DOM of the web chat: renders the app's state and the store's items, and
// turns clicks and keys into app actions. Kept thin; the decisions live in
// app.js, store.js and sender.js.
//
// Safety: text from customers and agents is only ever put in the page with
// `textContent`; no HTML is built from data. The page's CSP forbids inline
// scripts and styles, so visibility uses the `hidden` attribute and classes.

import { Connection, Phase } from './app.js';
import { BODY_MAX_CHARS, charCount } from './protocol.js';
import { NoticeType, Status } from './store.js';

const CONNECTION_TEXT = {
  [Connection.connecting]: 'Connecting…',
  [Connection.connected]: 'Connected',
  [Connection.reconnecting]: 'Reconnecting…',
  [Connection.offline]: 'Offline — trying again shortly',
};

const STATUS_TEXT = {
  [Status.sending]: 'Sending…',
  [Status.sent]: 'Sent',
  [Status.delivered]: 'Delivered',
  [Status.failed]: 'Not delivered',
  [Status.rejected]: 'Not sent',
};

/** Show the length counter once a message gets this close to the limit. */
const COUNTER_FROM = BODY_MAX_CHARS - 200;
/** Keep following new messages when the list is scrolled to within this many px of the bottom. */
const STICK_PX = 48;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

function el(tag, { className, testid, text, attrs } = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (testid) node.dataset.testid = testid;
  if (text != null) node.textContent = text;
  for (const [name, value] of Object.entries(attrs ?? {})) node.setAttribute(name, value);
  return node;
}

function formatTime(iso) {
  const date = iso ? new Date(iso) : null;
  return date && !Number.isNaN(date.getTime()) ? timeFormat.format(date) : '';
}

export function conversationLine(conversation, phase) {
  if (phase !== Phase.chat) return { state: 'none', text: '' };
  if (!conversation) return { state: 'none', text: 'Send a message to start the chat.' };
  if (conversation.state === 'closed') return { state: 'ended', text: 'Chat ended' };
  if (conversation.agent?.name) return { state: 'active', text: `You're chatting with ${conversation.agent.name}` };
  return { state: 'waiting', text: 'Waiting for an agent…' };
}

export class ChatView {
  /** Scroll to the newest message on the next render (after the customer sends, or opening the chat). */
  #stickToBottom = false;

  /** @param {Document} doc @param {import('./app.js').ChatApp} app */
  constructor(doc, app) {
    this.app = app;
    const $ = (id) => doc.getElementById(id);
    this.nodes = {
      status: $('status'),
      conversation: $('conversation-state'),
      nameView: $('name-view'),
      nameForm: $('name-form'),
      nameInput: $('name-input'),
      nameError: $('name-error'),
      nameSubmit: $('name-submit'),
      chatView: $('chat-view'),
      list: $('messages'),
      composer: $('composer'),
      input: $('composer-input'),
      send: $('send-button'),
      composerError: $('composer-error'),
      endBar: $('end-bar'),
      endChat: $('end-chat'),
      endConfirm: $('end-confirm'),
      endYes: $('end-yes'),
      endNo: $('end-no'),
      endError: $('end-error'),
    };
    /** key → {node, signature} of the rendered items. */
    this.rendered = new Map();
    this.lastPhase = null;
    this.renderQueued = false;
    this.#bind();
  }

  #bind() {
    const { nameForm, nameInput, composer, input, list, endChat, endYes, endNo } = this.nodes;
    nameForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.app.register(nameInput.value);
    });
    composer.addEventListener('submit', (event) => {
      event.preventDefault();
      this.#send();
    });
    input.addEventListener('keydown', (event) => {
      // Enter sends, Shift+Enter is a new line; never while an IME composes a word.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        this.#send();
      }
    });
    input.addEventListener('input', () => this.#showComposerHint());
    endChat.addEventListener('click', () => this.app.askEndChat());
    endYes.addEventListener('click', () => this.app.endChat());
    endNo.addEventListener('click', () => {
      this.app.cancelEndChat();
      this.nodes.input.focus();
    });
    list.addEventListener('click', (event) => {
      const button = event.target.closest('[data-action="new-chat"]');
      if (!button) return;
      this.app.newChat();
      this.nodes.input.focus();
    });
    const schedule = () => this.#queueRender();
    this.app.subscribe(schedule);
  }

  #send() {
    const result = this.app.send(this.nodes.input.value);
    if (result.ok) {
      this.nodes.input.value = '';
      this.#setComposerError(null);
      this.#stickToBottom = true;
    } else if (result.error) {
      this.#setComposerError(result.error);
    }
  }

  #showComposerHint() {
    const n = charCount(this.nodes.input.value.trim());
    if (n > BODY_MAX_CHARS) this.#setComposerError(`Message too long: ${n} of ${BODY_MAX_CHARS} characters.`);
    else if (n >= COUNTER_FROM) this.#setComposerError(`${n} of ${BODY_MAX_CHARS} characters`, 'counter');
    else this.#setComposerError(null);
  }

  #setComposerError(text, kind = 'error') {
    const node = this.nodes.composerError;
    node.hidden = !text;
    node.textContent = text ?? '';
    node.dataset.kind = kind;
    if (kind === 'counter') node.removeAttribute('role');
    else node.setAttribute('role', 'alert');
  }

  /** Renders once per burst of changes (a session applies hundreds of messages at once). */
  #queueRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  render() {
    const { state, store } = this.app;
    const n = this.nodes;

    n.status.dataset.state = state.connection;
    n.status.textContent = CONNECTION_TEXT[state.connection] ?? state.connection;

    const line = conversationLine(store.conversation, state.phase);
    n.conversation.dataset.state = line.state;
    n.conversation.textContent = line.text;

    const inChat = state.phase === Phase.chat;
    n.nameView.hidden = inChat;
    n.chatView.hidden = !inChat;
    n.nameSubmit.disabled = state.registering;
    n.nameInput.disabled = state.registering;
    n.nameSubmit.textContent = state.registering ? 'Starting…' : 'Start chat';
    n.nameError.hidden = !state.nameError;
    n.nameError.textContent = state.nameError ?? '';
    n.input.placeholder = store.ended ? 'Write to start a new chat…' : 'Write a message…';

    const canEnd = this.app.canEndChat;
    const confirming = canEnd && state.confirmingEnd;
    n.endBar.hidden = !canEnd;
    n.endChat.hidden = confirming;
    n.endChat.disabled = state.connection !== Connection.connected;
    n.endConfirm.hidden = !confirming;
    n.endYes.disabled = state.ending || state.connection !== Connection.connected;
    n.endYes.textContent = state.ending ? 'Ending…' : 'End chat';
    n.endNo.disabled = state.ending;
    n.endError.hidden = !state.endError;
    n.endError.textContent = state.endError ?? '';

    if (state.phase !== this.lastPhase) {
      const first = this.lastPhase === null;
      this.lastPhase = state.phase;
      if (inChat) {
        this.#stickToBottom = true;
        if (!first) n.input.focus();
      } else {
        n.nameInput.value = '';
        if (!first) n.nameInput.focus();
      }
    }

    if (inChat) this.#renderItems();
  }

  #renderItems() {
    const { list } = this.nodes;
    const { store } = this.app;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight <= STICK_PX;
    const items = store.items();
    const seen = new Set();
    let cursor = list.firstElementChild;
    for (const item of items) {
      seen.add(item.key);
      const signature = this.#signature(item);
      let entry = this.rendered.get(item.key);
      if (!entry) {
        entry = { node: null, signature: null };
        this.rendered.set(item.key, entry);
      }
      if (entry.signature !== signature) {
        const node = this.#build(item);
        if (entry.node) {
          if (entry.node === cursor) cursor = node;
          entry.node.replaceWith(node);
        }
        entry.node = node;
        entry.signature = signature;
      }
      if (entry.node !== cursor) list.insertBefore(entry.node, cursor);
      else cursor = cursor.nextElementSibling;
    }
    for (const [key, entry] of this.rendered) {
      if (!seen.has(key)) {
        entry.node.remove();
        this.rendered.delete(key);
      }
    }
    if (atBottom || this.#stickToBottom) list.scrollTop = list.scrollHeight;
    this.#stickToBottom = false;
  }

  #signature(item) {
    if (item.kind === 'notice') return `${item.type}|${this.#showsNewChat(item)}`;
    return `${item.seq}|${item.status}|${item.error}|${item.note}|${item.body}|${item.createdAt}|${item.author}`;
  }

  #showsNewChat(notice) {
    const conv = this.app.store.conversation;
    return (
      notice.type === NoticeType.chatEnded &&
      !notice.dismissed &&
      conv?.id === notice.conversationId &&
      conv.state === 'closed'
    );
  }

  #build(item) {
    return item.kind === 'notice' ? this.#buildNotice(item) : this.#buildMessage(item);
  }

  #buildNotice(notice) {
    if (notice.type === NoticeType.agentJoined) {
      return el('li', { className: 'notice', testid: 'agent-joined', text: `Agent ${notice.agentName} joined` });
    }
    const node = el('li', { className: 'notice notice-ended', testid: 'chat-ended' });
    node.append(el('span', { text: 'Chat ended — start a new chat' }));
    if (this.#showsNewChat(notice)) {
      node.append(
        el('button', {
          className: 'new-chat',
          testid: 'new-chat-button',
          text: 'Start new chat',
          attrs: { type: 'button', 'data-action': 'new-chat' },
        }),
      );
    }
    return node;
  }

  #buildMessage(item) {
    const node = el('li', { className: `msg msg-${item.direction}`, testid: 'message' });
    node.dataset.direction = item.direction;
    node.dataset.seq = item.seq == null ? '' : String(item.seq);
    if (item.clientMessageId) node.dataset.clientMessageId = item.clientMessageId;
    if (item.status) node.dataset.status = item.status;

    const who =
      item.direction === 'customer' ? 'You' : item.direction === 'agent' ? item.author || 'Agent' : 'Notice';
    if (item.direction === 'agent') {
      node.append(el('p', { className: 'msg-author', text: who, attrs: { 'aria-hidden': 'true' } }));
    }
    // Screen readers hear who wrote it; `message-body` holds exactly the text.
    node.append(el('span', { className: 'visually-hidden', text: `${who} wrote:` }));
    node.append(el('p', { className: 'msg-body', testid: 'message-body', text: item.body }));

    const meta = el('p', { className: 'msg-meta' });
    const time = formatTime(item.createdAt);
    if (time) meta.append(el('time', { text: time, attrs: { datetime: item.createdAt } }));
    if (item.direction === 'customer' && item.status) {
      meta.append(el('span', { className: 'msg-status', testid: 'message-status', text: STATUS_TEXT[item.status] }));
    }
    if (meta.childNodes.length) node.append(meta);
    if (item.error) node.append(el('p', { className: 'msg-error', testid: 'message-error', text: item.error }));
    if (item.note) node.append(el('p', { className: 'msg-note', testid: 'message-note', text: item.note }));
    return node;
  }
}
