// embed.js: the web chat on any site. One tag —
//
//   <script src="https://chat.example.com/embed.js" async></script>
//
// — adds a launcher bubble and a chat panel to the page; or, with
// `data-manual`, nothing until the page calls `FlexBridge.init({...})`.
// docs/embedding.md lists the options and why the panel is an iframe of
// the bridge's own chat page (`?embed=1`) rather than a widget in the
// host page: the chat's CSS, scripts, storage and resume token stay in the
// bridge's origin, under its strict CSP, and the browser enforces which
// sites may frame it (`frame-ancestors`, from ALLOWED_ORIGINS).
//
// The launcher lives in a shadow root whose every element resets
// inherited styles (`all: initial`), so the host page's CSS does not reach
// in and ours does not leak out. Its state — the panel open, minimised
// (hidden, the chat kept live so the badge counts) or closed (the chat
// unloaded) — is kept in the host page's localStorage, per bridge.

(function () {
  'use strict';
  const script = document.currentScript;
  const FROM_CHAT = 'flexbridge-chat';
  const FROM_EMBED = 'flexbridge-embed';
  const instances = new Map();

  const CSS = `
  .root, .root * { all: initial; box-sizing: border-box; }
  .root { position: fixed; bottom: 20px; z-index: var(--z, 2147483000); font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  .root.right { right: 20px; }
  .root.left { left: 20px; }
  .launcher { display: flex; align-items: center; justify-content: center; position: relative; width: 60px; height: 60px;
    border-radius: 50%; cursor: pointer; background: var(--accent, #1f5fd6); color: var(--accent-text, #fff);
    box-shadow: 0 4px 14px rgba(0,0,0,.25); }
  .launcher:focus-visible { outline: 3px solid #111; outline-offset: 3px; box-shadow: 0 0 0 6px #fff; }
  .launcher svg { display: block; width: 28px; height: 28px; fill: currentColor; }
  .badge { display: none; position: absolute; top: -4px; right: -4px; min-width: 22px; height: 22px; padding: 0 6px;
    border-radius: 11px; background: #c5221f; color: #fff; font: 700 12px/22px system-ui, sans-serif; text-align: center; }
  .badge.shown { display: block; }
  .panel { display: none; position: fixed; bottom: 92px; width: 380px; height: min(620px, calc(100vh - 112px));
    border-radius: 14px; overflow: hidden; background: #fff; box-shadow: 0 10px 40px rgba(0,0,0,.3); }
  .right .panel { right: 20px; }
  .left .panel { left: 20px; }
  .panel.open { display: block; }
  .panel iframe { display: block; width: 100%; height: 100%; border: 0; }
  @media (max-width: 600px) {
    .panel { inset: 0; width: 100vw; height: 100vh; height: 100dvh; border-radius: 0; bottom: 0; }
    .root.is-open .launcher { display: none; }
  }
  @media (prefers-reduced-motion: no-preference) { .launcher { transition: transform .15s; } .launcher:hover { transform: scale(1.05); } }
  `;

  function stateKey(base) {
    return `flexbridge.embed:${base.origin}${base.pathname}`;
  }

  function loadState(base) {
    try {
      return JSON.parse(localStorage.getItem(stateKey(base)) ?? 'null') ?? {};
    } catch {
      return {};
    }
  }

  function saveState(base, state) {
    try {
      localStorage.setItem(stateKey(base), JSON.stringify(state));
    } catch {
      // storage blocked: the state is not remembered
    }
  }

  function icon() {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h10V9H7zm0 4v2h7v-2H7z');
    svg.append(path);
    return svg;
  }

  const LABELS = {
    en: ['Open the chat', 'Minimise the chat', '{n} unread'],
    es: ['Abrir el chat', 'Minimizar el chat', '{n} sin leer'],
    fr: ['Ouvrir la discussion', 'Réduire la discussion', '{n} non lus'],
    de: ['Chat öffnen', 'Chat minimieren', '{n} ungelesen'],
  };

  function language(setting) {
    if (LABELS[setting]) return setting;
    for (const tag of navigator.languages ?? [navigator.language]) {
      const primary = String(tag).toLowerCase().split('-')[0];
      if (LABELS[primary]) return primary;
    }
    return 'en';
  }

  async function init(options = {}) {
    const src = options.url ?? script?.src;
    if (!src) throw new Error('FlexBridge.init: no bridge URL (pass {url})');
    const base = new URL('./', new URL(src, location.href));
    if (instances.has(base.href)) return instances.get(base.href);
    const instance = start(base, options);
    instances.set(base.href, instance);
    return instance;
  }

  async function start(base, options) {
    let settings;
    try {
      const response = await fetch(new URL('widget.json', base), { credentials: 'omit', mode: 'cors' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      settings = await response.json();
    } catch (error) {
      console.warn(`flexbridge: the chat at ${base.origin} is not available on this site (is ${location.origin} in its ALLOWED_ORIGINS?)`, error);
      return null;
    }
    const lang = language(settings.language);
    const [openLabel, minimiseLabel, unreadLabel] = LABELS[lang];
    const title = settings.title || null;
    const position = options.position === 'left' || options.position === 'right' ? options.position : settings.position;

    const host = document.createElement('div');
    host.id = options.id ?? 'flexbridge-chat';
    host.style.setProperty('all', 'initial', 'important');
    host.style.setProperty('position', 'static', 'important');
    const shadow = host.attachShadow({ mode: 'open' });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];

    const root = document.createElement('div');
    root.className = `root ${position === 'left' ? 'left' : 'right'}`;
    root.lang = lang;
    if (settings.color) root.style.setProperty('--accent', settings.color);
    if (settings.colorText) root.style.setProperty('--accent-text', settings.colorText);
    if (options.zIndex) root.style.setProperty('--z', String(options.zIndex));

    const launcher = document.createElement('button');
    launcher.type = 'button';
    launcher.className = 'launcher';
    launcher.dataset.testid = 'launcher';
    launcher.setAttribute('aria-controls', 'flexbridge-panel');
    launcher.append(icon());
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.dataset.testid = 'launcher-badge';
    badge.setAttribute('aria-hidden', 'true');
    launcher.append(badge);

    const panel = document.createElement('div');
    panel.className = 'panel';
    panel.id = 'flexbridge-panel';
    panel.dataset.testid = 'panel';
    panel.setAttribute('role', 'region');
    panel.setAttribute('aria-label', title ?? openLabel);
    root.append(panel, launcher);
    shadow.append(root);
    (document.body ?? document.documentElement).append(host);

    const state = { view: 'closed', started: false, ...loadState(base) };
    if (options.open === true && !('view' in loadState(base))) state.view = 'open';
    let frame = null;
    let unread = 0;
    const baseTitle = () => document.title.replace(/^\(\d+\) /, '');

    function persist() {
      saveState(base, { view: state.view, started: state.started });
    }

    function ensureFrame() {
      if (frame) return frame;
      frame = document.createElement('iframe');
      frame.src = new URL('?embed=1', base).href;
      frame.title = title ?? openLabel;
      frame.dataset.testid = 'chat-frame';
      frame.setAttribute('referrerpolicy', 'no-referrer');
      frame.addEventListener('load', tell);
      panel.append(frame);
      return frame;
    }

    function tell() {
      frame?.contentWindow?.postMessage({ source: FROM_EMBED, type: 'visibility', open: state.view === 'open' }, base.origin);
    }

    function showUnread(count) {
      unread = count;
      badge.textContent = count > 99 ? '99+' : String(count);
      badge.classList.toggle('shown', count > 0);
      const label = state.view === 'open' ? minimiseLabel : openLabel;
      const named = title ? `${label}: ${title}` : label;
      launcher.setAttribute('aria-label', count > 0 ? `${named} (${unreadLabel.replace('{n}', count)})` : named);
      const clean = baseTitle();
      document.title = count > 0 && document.visibilityState === 'hidden' ? `(${count}) ${clean}` : clean;
    }

    function render() {
      const open = state.view === 'open';
      panel.classList.toggle('open', open);
      root.classList.toggle('is-open', open);
      launcher.setAttribute('aria-expanded', String(open));
      root.dataset.view = state.view;
      host.dataset.view = state.view;
      showUnread(unread);
    }

    function setView(view, { focus = false } = {}) {
      state.view = view;
      if (view === 'open') ensureFrame();
      if (view === 'closed' && frame) {
        frame.remove();
        frame = null;
        unread = 0;
      }
      persist();
      render();
      tell();
      if (focus && view === 'open') frame?.focus();
      if (focus && view !== 'open') launcher.focus();
    }

    launcher.addEventListener('click', () => setView(state.view === 'open' ? 'minimised' : 'open', { focus: true }));
    window.addEventListener('message', (event) => {
      if (!frame || event.source !== frame.contentWindow || event.origin !== base.origin) return;
      const data = event.data;
      if (!data || data.source !== FROM_CHAT) return;
      if (data.type === 'ready') tell();
      else if (data.type === 'unread') showUnread(Math.max(0, Number(data.count) || 0));
      else if (data.type === 'minimise') setView('minimised', { focus: true });
      else if (data.type === 'close') setView('closed', { focus: true });
      else if (data.type === 'customer') {
        state.started = Boolean(data.started);
        persist();
      }
    });
    document.addEventListener('visibilitychange', () => showUnread(unread));

    // A chat minimised on an earlier page stays live (its badge counts).
    if (state.view === 'open' || (state.view === 'minimised' && state.started)) ensureFrame();
    render();
    return {
      open: () => setView('open', { focus: true }),
      minimise: () => setView('minimised'),
      close: () => setView('closed'),
      get view() {
        return state.view;
      },
    };
  }

  window.FlexBridge = Object.assign(window.FlexBridge ?? {}, { init });
  if (script && !script.hasAttribute('data-manual')) {
    const data = script.dataset;
    const ready = () =>
      init({ position: data.position, open: data.open === 'true', zIndex: data.zIndex ? Number(data.zIndex) : undefined });
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ready, { once: true });
    else ready();
  }
})();
