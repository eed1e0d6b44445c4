// The DOM of the web chat: renders the app's state and the store's items,
// and turns clicks and keys into app actions. Kept thin; the decisions live
// in app.js, store.js and sender.js; the parts are form.js (the
// pre-engagement form), composer.js (the send box) and bubble.js (the
// list's items).
//
// Safety: text from customers and agents is only ever put in the page with
// `textContent`; no HTML is built from data. The page's CSP forbids inline
// scripts and styles, so visibility uses the `hidden` attribute and classes
// (colours from the settings are CSS custom properties set through CSSOM).
//
// Keyboard and focus: the end-chat confirmation is an alertdialog; opening
// it moves focus to "Keep chatting", Escape or "Keep chatting" closes it
// back onto "End chat", and ending moves focus to "Start new chat" (or the
// send box), never to `<body>`. The list stays pinned to its newest item
// while the customer is at the bottom, also when the bars above it change.

import { Connection, Phase } from './app.js';
import { buildDaySeparator, buildMessage, buildNotice, dayKey, dayLabel } from './bubble.js';
import { Composer } from './composer.js';
import { bindFilePicking } from './files.js';
import { PreEngagementForm } from './form.js';
import { isOpen } from './hours.js';
import { NoticeType } from './store.js';

const CONNECTION_KEY = {
  [Connection.connecting]: 'connecting',
  [Connection.connected]: 'connected',
  [Connection.reconnecting]: 'reconnecting',
  [Connection.offline]: 'offline',
};

/** Pinned to the bottom when within this many px of it. */
const STICK_PX = 48;

/**
 * The header's line about the conversation: `{state, text}`.
 * @param {object} ctx `{t, now, busyAfterSeconds, open}` (`open`: within business hours)
 */
export function conversationLine(conversation, phase, { t, now = Date.now(), busyAfterSeconds = 0, open = true }) {
  if (phase !== Phase.chat) return { state: 'none', text: '' };
  if (!conversation) return { state: 'none', text: open ? t('sendToStart') : t('closed') };
  if (conversation.state === 'closed') return { state: 'ended', text: t('ended') };
  if (conversation.agent?.name) return { state: 'active', text: t('chattingWith', { agent: conversation.agent.name }) };
  if (!open) return { state: 'waiting', text: t('closed') };
  const started = Date.parse(conversation.createdAt ?? '');
  const busy = busyAfterSeconds > 0 && Number.isFinite(started) && now - started >= busyAfterSeconds * 1000;
  return busy ? { state: 'busy', text: t('busy') } : { state: 'waiting', text: t('waiting') };
}

/** Puts the language's words into the page's `data-i18n*` elements. */
export function translatePage(doc, t) {
  doc.documentElement.lang = t.lang;
  doc.documentElement.dir = t.dir;
  for (const node of doc.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const node of doc.querySelectorAll('[data-i18n-label]')) node.setAttribute('aria-label', t(node.dataset.i18nLabel));
  for (const node of doc.querySelectorAll('[data-i18n-title]')) node.title = t(node.dataset.i18nTitle);
  doc.title = t('title');
}

/** Colours and logo from the settings (CSSOM, which the CSP allows). */
export function applyBranding(doc, settings) {
  const root = doc.documentElement.style;
  if (settings.color) {
    root.setProperty('--accent', settings.color);
    root.setProperty('--customer-bubble', settings.color);
  }
  if (settings.colorText) {
    root.setProperty('--accent-text', settings.colorText);
    root.setProperty('--customer-text', settings.colorText);
  }
  const logo = doc.getElementById('logo');
  if (logo && settings.logoUrl) {
    logo.src = settings.logoUrl;
    logo.hidden = false;
  }
}

export class ChatView {
  #stickToBottom = false;
  #pinned = true;
  #focusNext = null;
  #clock = null;

  /**
   * @param {Document} doc
   * @param {import('./app.js').ChatApp} app
   * @param {object} options
   * @param {object} options.settings `/widget.json`
   * @param {Function} options.t the page's words (i18n.js)
   * @param {boolean} [options.embedded] in the embed's panel (a minimise button)
   * @param {() => void} [options.onMinimise]
   * @param {() => void} [options.onClose] the embed's panel closes (the chat unloads)
   * @param {(items: any[]) => void} [options.onItems] sees the items after each render (unread)
   */
  constructor(doc, app, { settings, t, embedded = false, onMinimise = () => {}, onClose = () => {}, onItems = () => {} }) {
    this.doc = doc;
    this.app = app;
    this.settings = settings;
    this.t = t;
    this.embedded = embedded;
    this.onMinimise = onMinimise;
    this.onClose = onClose;
    this.onItems = onItems;
    this.timeFormat = new Intl.DateTimeFormat(t.lang, { hour: '2-digit', minute: '2-digit' });
    const $ = (id) => doc.getElementById(id);
    this.nodes = {
      status: $('status'),
      conversation: $('conversation-state'),
      nameView: $('name-view'),
      nameForm: $('name-form'),
      nameError: $('name-error'),
      nameSubmit: $('name-submit'),
      expired: $('expired-notice'),
      hours: $('hours-notice'),
      chatView: $('chat-view'),
      list: $('messages'),
      endBar: $('end-bar'),
      endChat: $('end-chat'),
      endConfirm: $('end-confirm'),
      endYes: $('end-yes'),
      endNo: $('end-no'),
      endError: $('end-error'),
      transcript: $('transcript-button'),
      transcriptError: $('transcript-error'),
      minimise: $('minimise-button'),
      close: $('close-button'),
    };
    this.form = new PreEngagementForm(doc, $('form-fields'), settings.form?.fields, t);
    this.composer = new Composer(
      { form: $('composer'), input: $('composer-input'), error: $('composer-error') },
      (text) => {
        const result = this.app.send(text);
        if (result.ok) this.#stickToBottom = true;
        return result;
      },
      t,
    );
    if ($('attach-input')) {
      bindFilePicking(
        { button: $('attach-button'), input: $('attach-input'), dropZone: $('chat-view'), pasteTarget: $('composer-input') },
        (files) => this.#sendFiles(files),
      );
    }
    this.uploadNode = $('upload-progress');
    /** key → {node, signature} of the rendered items. */
    this.rendered = new Map();
    this.lastPhase = null;
    this.renderQueued = false;
    this.#bind();
  }

  #bind() {
    const n = this.nodes;
    n.nameForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      await this.app.register(this.form.values());
      this.form.focusFirstError(this.app.state.fieldErrors);
    });
    n.endChat.addEventListener('click', () => {
      this.#focusNext = 'endNo';
      this.app.askEndChat();
    });
    n.endYes.addEventListener('click', async () => {
      await this.app.endChat();
      if (!this.app.state.endError) this.#focusNext = 'afterEnd';
      this.#queueRender();
    });
    n.endNo.addEventListener('click', () => this.#cancelEnd());
    n.endConfirm.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        this.#cancelEnd();
      }
    });
    this.doc.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.embedded && !event.defaultPrevented && !this.app.state.confirmingEnd) {
        this.onMinimise();
      }
    });
    n.minimise.addEventListener('click', () => this.onMinimise());
    n.close.addEventListener('click', () => this.onClose());
    n.transcript.addEventListener('click', () => this.#downloadTranscript());
    n.list.addEventListener('click', (event) => {
      const button = event.target.closest('[data-action="new-chat"]');
      if (!button) return;
      this.app.newChat();
      this.composer.focus();
    });
    n.list.addEventListener('scroll', () => {
      const list = n.list;
      this.#pinned = list.scrollHeight - list.scrollTop - list.clientHeight <= STICK_PX;
    });
    // The bars above the list (end chat, its confirmation) change its height:
    // keep the newest item in view if the customer was looking at it.
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(() => {
        if (this.#pinned) n.list.scrollTop = n.list.scrollHeight;
      }).observe(n.list);
    }
    this.app.subscribe(() => this.#queueRender());
    // The waiting, busy and business-hours lines change with time alone.
    this.#clock = setInterval(() => this.#queueRender(), 15_000);
  }

  #cancelEnd() {
    this.#focusNext = 'endChat';
    this.app.cancelEndChat();
  }

  async #downloadTranscript() {
    const n = this.nodes;
    n.transcriptError.hidden = true;
    const result = await this.app.transcript();
    if (!result.ok) {
      n.transcriptError.textContent = result.error;
      n.transcriptError.hidden = false;
      return;
    }
    const url = URL.createObjectURL(new Blob([result.ok.text], { type: 'text/plain;charset=utf-8' }));
    const link = this.doc.createElement('a');
    link.href = url;
    link.download = result.ok.filename;
    link.hidden = true;
    this.doc.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
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
    const { t } = this;
    const n = this.nodes;
    const open = isOpen(this.settings.hours);

    n.status.dataset.state = state.connection;
    n.status.textContent = t(CONNECTION_KEY[state.connection] ?? 'connecting');

    const line = conversationLine(store.conversation, state.phase, {
      t,
      busyAfterSeconds: this.settings.busyAfterSeconds ?? 0,
      open,
    });
    n.conversation.dataset.state = line.state;
    n.conversation.textContent = line.text;

    const inChat = state.phase === Phase.chat;
    n.nameView.hidden = inChat;
    n.chatView.hidden = !inChat;
    n.nameSubmit.disabled = state.registering;
    this.form.setDisabled(state.registering);
    n.nameSubmit.textContent = t(state.registering ? 'starting' : 'startChat');
    n.nameError.hidden = !state.nameError;
    n.nameError.textContent = state.nameError ?? '';
    this.form.showErrors(state.fieldErrors);
    n.expired.hidden = !(state.expired && !inChat);
    n.hours.hidden = open;
    n.hours.textContent = open ? '' : t('closed');
    n.minimise.hidden = !this.embedded;
    n.close.hidden = !this.embedded;
    n.transcript.hidden = !(inChat && store.conversation);
    this.composer.input.placeholder = t(store.ended ? 'placeholderNew' : 'placeholder');

    const canEnd = this.app.canEndChat;
    const confirming = canEnd && state.confirmingEnd;
    n.endBar.hidden = !canEnd;
    n.endChat.hidden = confirming;
    n.endChat.disabled = state.connection !== Connection.connected;
    n.endConfirm.hidden = !confirming;
    n.endYes.disabled = state.ending || state.connection !== Connection.connected;
    n.endYes.textContent = t(state.ending ? 'ending' : 'endChat');
    n.endNo.disabled = state.ending;
    n.endError.hidden = !state.endError;
    n.endError.textContent = state.endError ?? '';

    if (state.phase !== this.lastPhase) {
      const first = this.lastPhase === null;
      this.lastPhase = state.phase;
      if (inChat) {
        this.#stickToBottom = true;
        if (!first) this.composer.focus();
      } else {
        this.form.clear();
        if (!first) this.form.focus();
      }
    }

    if (inChat) this.#renderItems();
    this.#moveFocus(canEnd);
    this.onItems(store.items());
  }

  #moveFocus(canEnd) {
    const next = this.#focusNext;
    this.#focusNext = null;
    const n = this.nodes;
    if (next === 'endNo' && !n.endConfirm.hidden) n.endNo.focus();
    else if (next === 'endChat' && canEnd) n.endChat.focus();
    else if (next === 'afterEnd' || (next === 'endChat' && !canEnd)) {
      const newChat = n.list.querySelector('[data-testid="new-chat-button"]');
      if (newChat) newChat.focus();
      else this.composer.focus();
    }
  }

  #renderItems() {
    const { list } = this.nodes;
    const entries = this.#entries(this.app.store.items());
    const seen = new Set();
    let cursor = list.firstElementChild;
    for (const entry of entries) {
      seen.add(entry.key);
      let shown = this.rendered.get(entry.key);
      if (!shown) {
        shown = { node: null, signature: null };
        this.rendered.set(entry.key, shown);
      }
      if (shown.signature !== entry.signature) {
        const node = entry.build();
        if (shown.node) {
          if (shown.node === cursor) cursor = node;
          shown.node.replaceWith(node);
        }
        shown.node = node;
        shown.signature = entry.signature;
      }
      if (shown.node !== cursor) list.insertBefore(shown.node, cursor);
      else cursor = cursor.nextElementSibling;
    }
    for (const [key, shown] of this.rendered) {
      if (!seen.has(key)) {
        shown.node.remove();
        this.rendered.delete(key);
      }
    }
    if (this.#pinned || this.#stickToBottom) {
      list.scrollTop = list.scrollHeight;
      this.#pinned = true;
    }
    this.#stickToBottom = false;
  }

  /** The list's entries in order: the items, with a day separator before each new day. */
  #entries(items) {
    const ctx = {
      doc: this.doc,
      t: this.t,
      timeFormat: this.timeFormat,
      loadFile: (id) => this.app.file(id),
      download: (file) => this.#downloadFile(file),
    };
    const entries = [];
    let day = null;
    for (const item of items) {
      const key = item.kind === 'message' ? dayKey(item.createdAt) : null;
      if (key && key !== day) {
        day = key;
        const label = dayLabel(item.createdAt, this.t);
        entries.push({
          key: `day:${key}`,
          signature: label,
          build: () => buildDaySeparator(this.doc, label, key),
        });
      }
      if (item.kind === 'notice') {
        const showsNewChat = this.#showsNewChat(item);
        entries.push({
          key: item.key,
          signature: `${item.type}|${item.reason}|${item.endedBy}|${showsNewChat}`,
          build: () => buildNotice(item, { ...ctx, showsNewChat }),
        });
      } else {
        entries.push({
          key: item.key,
          signature: `${item.seq}|${item.status}|${item.error}|${item.note}|${item.body}|${item.createdAt}|${item.author}|${item.attachment?.id}`,
          build: () => buildMessage(item, ctx),
        });
      }
    }
    return entries;
  }

  /** Uploads and sends each file in turn, showing the upload's progress. */
  async #sendFiles(files) {
    for (const file of files) {
      const node = this.uploadNode;
      const show = (fraction) => {
        if (!node) return;
        node.hidden = false;
        node.value = fraction;
        node.textContent = this.t('uploading', { name: file.name, percent: Math.round(fraction * 100) });
        node.setAttribute('aria-valuetext', node.textContent);
      };
      show(0);
      const result = await this.app.sendFile(file, this.settings.attachments, show);
      if (node) node.hidden = true;
      if (result.error) {
        this.composer.setError(result.error);
        return;
      }
      this.composer.setError(null);
      this.#stickToBottom = true;
      this.#queueRender();
    }
  }

  /** Saves one of the customer's files (fetched with their token). */
  async #downloadFile(file) {
    const blob = await this.app.file(file.id);
    if (!blob) {
      this.composer.setError(this.t('uploadFailed', { name: file.name, reason: 'not found' }));
      return;
    }
    const url = URL.createObjectURL(blob);
    const link = this.doc.createElement('a');
    link.href = url;
    link.download = file.name;
    link.rel = 'noopener';
    this.doc.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
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
}
