// Entry point of the web chat bundle (widget.js): wires the official
// socket.io-client, the browser's storage and the page to the app.
//
// The Socket.IO path is resolved against the page's own URL, so a bridge
// mounted under a prefix (`https://example.com/chat/`) works unchanged.
// Transports: WebSocket first (no sticky sessions needed behind a load
// balancer), long-polling when WebSocket cannot be opened.

import { io } from 'socket.io-client';
import { ChatApp } from './app.js';
import { JsonStorage, Keys } from './persist.js';
import { ChatView } from './view.js';

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

function boot() {
  const app = new ChatApp({
    createSocket,
    local: new JsonStorage(() => window.localStorage),
    session: new JsonStorage(() => window.sessionStorage),
  });
  const view = new ChatView(document, app);
  app.start();
  view.render();

  // Another tab registered while this one shows the name form.
  window.addEventListener('storage', (event) => {
    if (event.key === Keys.customer && event.newValue) app.adoptStoredCustomer();
  });
  // Save the transcript before the page goes away (the save is otherwise debounced).
  window.addEventListener('pagehide', () => app.flush());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') app.flush();
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot, { once: true });
} else {
  boot();
}
