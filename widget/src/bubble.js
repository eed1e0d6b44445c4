// The items of the message list, as DOM: a message bubble, a notice (an
// agent joined, the chat ended) and a day separator. Each is built whole
// from one store item, so the view can replace it when the item changes.
//
// A bubble is: the author (agents), a line for screen readers ("Alice
// wrote:"), the body (`dir="auto"`, links made by linkify.js), then a meta
// line (time, delivery status) and any error or retry note. A later part
// of the bubble (attachments: a thumbnail or a file link) goes between the
// body and the meta line (`buildAttachment`).
//
// Safety: text is only ever put in with `textContent`; a link's `href`
// is only what linkify.js allowed (http, https, mailto).

import { formatSize, isImage } from './files.js';
import { linkify } from './linkify.js';
import { NoticeType, Status } from './store.js';

const STATUS_KEY = {
  [Status.sending]: 'sending',
  [Status.sent]: 'sent',
  [Status.delivered]: 'delivered',
  [Status.failed]: 'failed',
  [Status.rejected]: 'rejected',
};

export function el(doc, tag, { className, testid, text, attrs } = {}) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (testid) node.dataset.testid = testid;
  if (text != null) node.textContent = text;
  for (const [name, value] of Object.entries(attrs ?? {})) node.setAttribute(name, value);
  return node;
}

function validDate(iso) {
  const date = iso ? new Date(iso) : null;
  return date && !Number.isNaN(date.getTime()) ? date : null;
}

/** The local calendar day of a timestamp (`2026-11-25`), or null. */
export function dayKey(iso) {
  const date = validDate(iso);
  if (!date) return null;
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** "Today", "Yesterday" or the date in the page's language. */
export function dayLabel(iso, t, now = new Date()) {
  const key = dayKey(iso);
  if (key === dayKey(now.toISOString())) return t('today');
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (key === dayKey(yesterday.toISOString())) return t('yesterday');
  return new Intl.DateTimeFormat(t.lang, { dateStyle: 'long' }).format(validDate(iso));
}

/** The body's text with safe links, into `node`. */
export function fillBody(doc, node, text) {
  for (const segment of linkify(text)) {
    if (!segment.href) {
      node.append(doc.createTextNode(segment.text));
      continue;
    }
    node.append(
      el(doc, 'a', {
        text: segment.text,
        attrs: { href: segment.href, rel: 'noopener noreferrer', target: '_blank' },
      }),
    );
  }
}

export function buildDaySeparator(doc, label, key) {
  const node = el(doc, 'li', { className: 'day-separator', testid: 'day-separator' });
  node.dataset.day = key;
  node.append(el(doc, 'span', { text: label }));
  return node;
}

/** Who ended the chat, as the ended notice says it. */
export function endedText(notice, t) {
  if (notice.reason === 'customer_ended') return t('endedByYou');
  if (notice.endedBy) return t('endedByAgent', { agent: notice.endedBy });
  return t('endedOther');
}

/**
 * @param {object} ctx
 * @param {Document} ctx.doc
 * @param {Function} ctx.t
 * @param {boolean} ctx.showsNewChat the "start new chat" button belongs on this notice
 */
export function buildNotice(notice, { doc, t, showsNewChat }) {
  if (notice.type === NoticeType.agentJoined) {
    return el(doc, 'li', { className: 'notice', testid: 'agent-joined', text: t('agentJoined', { agent: notice.agentName }) });
  }
  const node = el(doc, 'li', { className: 'notice notice-ended', testid: 'chat-ended' });
  node.dataset.reason = notice.reason ?? '';
  node.append(el(doc, 'span', { className: 'ended-who', testid: 'ended-by', text: endedText(notice, t) }));
  node.append(el(doc, 'span', { className: 'thank-you', testid: 'thank-you', text: t('thankYou') }));
  if (showsNewChat) {
    node.append(
      el(doc, 'button', {
        className: 'new-chat',
        testid: 'new-chat-button',
        text: t('newChat'),
        attrs: { type: 'button', 'data-action': 'new-chat' },
      }),
    );
  }
  return node;
}

/**
 * A message's file: a thumbnail for an image (its bytes fetched by
 * `loadFile`, shown from a blob: URL), and a download button for any file.
 * SVG and HTML are never shown, only downloaded (the bridge serves them as
 * `application/octet-stream` anyway).
 */
function buildAttachment(file, { doc, t, loadFile, download }) {
  const box = el(doc, 'div', { className: 'msg-file', testid: 'attachment' });
  box.dataset.type = file.type;
  if (isImage(file.type) && loadFile) {
    const img = el(doc, 'img', {
      className: 'msg-thumb',
      testid: 'attachment-thumbnail',
      attrs: { alt: file.name, loading: 'lazy' },
    });
    loadFile(file.id).then((blob) => {
      if (blob) img.src = URL.createObjectURL(blob);
    });
    box.append(img);
  }
  const button = el(doc, 'button', {
    className: 'msg-download',
    testid: 'attachment-download',
    text: t('attachment', { name: file.name, size: formatSize(file.size) }),
    attrs: { type: 'button', title: t('download', { name: file.name }) },
  });
  button.addEventListener('click', () => download?.(file));
  box.append(button);
  return box;
}

/** @param {object} ctx `{doc, t, timeFormat, loadFile, download}` */
export function buildMessage(item, { doc, t, timeFormat, loadFile, download }) {
  const node = el(doc, 'li', { className: `msg msg-${item.direction}`, testid: 'message' });
  node.dataset.direction = item.direction;
  node.dataset.seq = item.seq == null ? '' : String(item.seq);
  if (item.clientMessageId) node.dataset.clientMessageId = item.clientMessageId;
  if (item.status) node.dataset.status = item.status;

  const who =
    item.direction === 'customer' ? t('you') : item.direction === 'agent' ? item.author || t('agent') : t('notice');
  if (item.direction === 'agent') {
    node.append(el(doc, 'p', { className: 'msg-author', text: who, attrs: { 'aria-hidden': 'true' } }));
  }
  // Screen readers hear who wrote it; `message-body` holds exactly the text.
  node.append(el(doc, 'span', { className: 'visually-hidden', text: t('wrote', { who }) }));
  const body = el(doc, 'p', { className: 'msg-body', testid: 'message-body', attrs: { dir: 'auto' } });
  if (item.attachment) {
    body.classList.add('visually-hidden');
    body.textContent = item.body;
    node.append(body);
    node.append(buildAttachment(item.attachment, { doc, t, loadFile, download }));
  } else {
    fillBody(doc, body, item.body);
    node.append(body);
  }

  const meta = el(doc, 'p', { className: 'msg-meta' });
  const date = validDate(item.createdAt);
  if (date) meta.append(el(doc, 'time', { text: timeFormat.format(date), attrs: { datetime: item.createdAt } }));
  if (item.direction === 'customer' && item.status) {
    meta.append(el(doc, 'span', { className: 'msg-status', testid: 'message-status', text: t(STATUS_KEY[item.status]) }));
  }
  if (meta.childNodes.length) node.append(meta);
  if (item.error) node.append(el(doc, 'p', { className: 'msg-error', testid: 'message-error', text: item.error }));
  if (item.note) node.append(el(doc, 'p', { className: 'msg-note', testid: 'message-note', text: item.note }));
  return node;
}
