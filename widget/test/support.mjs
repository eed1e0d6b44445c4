// Test doubles for the widget's unit tests: an in-memory Web Storage, a clock
// advanced by hand, and a socket.io-client Socket stand-in whose "server" side
// the test plays.

import assert from 'node:assert/strict';

export class MemoryStorage {
  #map = new Map();
  getItem(key) {
    return this.#map.has(key) ? this.#map.get(key) : null;
  }
  setItem(key, value) {
    this.#map.set(key, String(value));
  }
  removeItem(key) {
    this.#map.delete(key);
  }
  keys() {
    return [...this.#map.keys()];
  }
}

export function fakeClock() {
  const timers = [];
  return {
    schedule(fn, ms) {
      const timer = { fn, ms, done: false };
      timers.push(timer);
      return () => {
        timer.done = true;
      };
    },
    /** Runs every timer due now (all of them: the tests do not model time). */
    runAll() {
      for (const timer of timers.filter((t) => !t.done)) {
        timer.done = true;
        timer.fn();
      }
    },
    pending: () => timers.filter((t) => !t.done),
  };
}

/** Lets promise callbacks (acks resolved by the test) run. */
export const tick = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Just enough of socket.io-client's Socket: `on`, `connect`, `disconnect`,
 * `timeout(ms).emitWithAck`, `active`, `connected`, `io.on`. The test answers
 * as the server with `accept`, `refuse`, `serverEmit`, `drop`, and the
 * recorded `emits`.
 */
export class FakeSocket {
  constructor(auth) {
    this.authFn = auth;
    this.handlers = new Map();
    this.managerHandlers = new Map();
    this.connected = false;
    this.active = false;
    /** The handshake `auth` of each connection attempt, in order. */
    this.handshakes = [];
    /** Every emit: `{event, payload, resolve, reject}`. */
    this.emits = [];
    this.io = {
      on: (event, fn) => this.managerHandlers.set(event, fn),
    };
  }

  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
    return this;
  }

  connect() {
    this.active = true;
    this.authFn((data) => this.handshakes.push(data));
    return this;
  }

  disconnect() {
    const was = this.connected;
    this.connected = false;
    this.active = false;
    if (was) this.fire('disconnect', 'io client disconnect');
    return this;
  }

  timeout(ms) {
    return {
      emitWithAck: (event, payload) =>
        new Promise((resolve, reject) => {
          this.emits.push({ event, payload, ms, resolve, reject });
        }),
    };
  }

  // ---- the server's side ----

  get lastHandshake() {
    return this.handshakes.at(-1);
  }

  accept() {
    assert.ok(this.active, 'accept() needs a connection attempt');
    this.connected = true;
    this.fire('connect');
  }

  refuse(message) {
    this.active = false;
    const error = new Error(message);
    this.fire('connect_error', error);
  }

  /** The transport dropped: socket.io-client reconnects by itself (active stays true). */
  drop() {
    this.connected = false;
    this.fire('disconnect', 'transport close');
    this.managerHandlers.get('reconnect_attempt')?.(1);
    this.authFn((data) => this.handshakes.push(data));
  }

  serverEmit(event, payload) {
    this.fire(event, payload);
  }

  emitsOf(event) {
    return this.emits.filter((e) => e.event === event);
  }

  fire(event, ...args) {
    for (const fn of this.handlers.get(event) ?? []) fn(...args);
  }
}
