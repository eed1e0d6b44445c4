// Entry point of the web chat bundle (widget.js): reads the settings
// (`widget.json`), chooses the language, and wires the official
// socket.io-client, the browser's storage and the page to the app. The
// same page is the full page at `/` and the embed's panel (`?embed=1`,
// framed by embed.js; frame.js talks to it).
//
// The Socket.IO path is resolved against the page's own URL, so a bridge
// mounted under a prefix (`https://example.com/chat/`) works unchanged.
// Transports: WebSocket first (no sticky sessions needed behind a load
// balancer), long-polling when WebSocket cannot be opened.

import { io } from 'socket.io-client';
import { ChatApp } from './app.js';
import { FrameLink } from './frame.js';
import { chooseLanguage, translator } from './i18n.js';
import { JsonStorage, Keys } from './persist.js';
import { chime, titleWithCount, Unread } from './unread.js';
import { applyBranding, ChatView, translatePage } from './view.js';

function createSocket(auth) {
  const path = new URL('socket.io/', document.baseURI).pathname;
  return io({
    path,
    auth,
    autoConnect: false,
    transports: ['websocket', 'polling'],
    tryAllTransports: true,
    reconnectionDelay: 1000,
    reconnectionDelayMax: 15_000,
    randomizationFactor: 0.5,
  });
}

/** `/widget.json`, or the built-in defaults when it cannot be read. */
async function loadSettings() {
  try {
    const response = await fetch(new URL('widget.json', document.baseURI), { cache: 'no-cache' });
    if (response.ok) return await response.json();
  } catch {
    // the defaults below
  }
  return { language: 'auto', form: null, texts: {}, busyAfterSeconds: 0, hours: null, sound: false };
}

async function boot() {
  const settings = await loadSettings();
  const t = translator(chooseLanguage(settings.language, navigator.languages ?? [navigator.language]), settings);
  translatePage(document, t);
  applyBranding(document, settings);
  const title = t('title');

  const app = new ChatApp({
    createSocket,
    local: new JsonStorage(() => window.localStorage),
    session: new JsonStorage(() => window.sessionStorage),
    t,
  });

  let panelOpen = true;
  const frame = new FrameLink(window, {
    onVisibility: (open) => {
      panelOpen = open;
      unread.setLooking(looking());
      if (open && !view.nodes.chatView.hidden) view.composer.focus();
    },
  });
  if (frame.embedded) {
    document.documentElement.classList.add('embedded');
    panelOpen = false;
  }
  const looking = () => document.visibilityState === 'visible' && panelOpen;
  const unread = new Unread({
    onChange: (count) => {
      if (frame.embedded) frame.post('unread', { count });
      else document.title = titleWithCount(title, count);
    },
    onNew: (lookingNow) => {
      if (settings.sound && !lookingNow) chime(window);
    },
  });
  unread.setLooking(looking());

  const view = new ChatView(document, app, {
    settings,
    t,
    embedded: frame.embedded,
    onMinimise: () => frame.post('minimise'),
    onClose: () => frame.post('close'),
    onItems: (items) => unread.observe(items),
  });
  let started = null;
  app.subscribe((state) => {
    const now = Boolean(state.customer);
    if (now !== started) {
      started = now;
      frame.post('customer', { started: now });
    }
  });
  app.start();
  view.render();
  frame.post('ready');

  // Another tab registered while this one shows the name form.
  window.addEventListener('storage', (event) => {
    if (event.key === Keys.customer && event.newValue) app.adoptStoredCustomer();
  });
  // Save the transcript before the page goes away (the save is otherwise debounced).
  window.addEventListener('pagehide', () => app.flush());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') app.flush();
    unread.setLooking(looking());
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot, { once: true });
} else {
  boot();
}
