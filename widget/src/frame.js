// The chat page inside the embed's panel (`?embed=1`, framed by
// embed.js): it tells the embedding page what the launcher needs and
// hears whether the panel is open.
//
// Page → embed (`{source: 'flexbridge-chat', type, …}`):
//   `ready`                     the page runs (the embed may show it)
//   `unread {count}`            agent messages not seen (the badge)
//   `customer {started}`        whether this browser has a customer (the
//                               embed then loads the chat on later pages)
//   `minimise`                  the customer pressed minimise (or Escape)
//   `close`                     the customer closed the panel (the chat unloads)
// Embed → page (`{source: 'flexbridge-embed', type, …}`), from the parent only:
//   `visibility {open}`         the panel was opened or closed
//
// Nothing here is secret (a count, a flag), and the page can only be
// framed by the sites of ALLOWED_ORIGINS (`frame-ancestors`), so it posts
// to the parent with target `*`; what it receives is checked to come from
// its parent window.

export const FROM_CHAT = 'flexbridge-chat';
export const FROM_EMBED = 'flexbridge-embed';

export class FrameLink {
  /** @param {Window} win @param {{onVisibility?: (open: boolean) => void}} hooks */
  constructor(win, { onVisibility = () => {} } = {}) {
    this.win = win;
    this.embedded = win.parent !== win && new URLSearchParams(win.location.search).has('embed');
    if (!this.embedded) return;
    win.addEventListener('message', (event) => {
      if (event.source !== win.parent) return;
      const data = event.data;
      if (!data || data.source !== FROM_EMBED) return;
      if (data.type === 'visibility') onVisibility(Boolean(data.open));
    });
  }

  post(type, fields = {}) {
    if (!this.embedded) return;
    try {
      this.win.parent.postMessage({ source: FROM_CHAT, type, ...fields }, '*');
    } catch {
      // the parent went away
    }
  }
}
