// What the web chat keeps in the browser, and where:
//
// localStorage (shared by every tab of the site, survives restarts)
//   flexbridge.customer            {customerId, token, name}: who this browser is
//   flexbridge.transcript.<id>     the store's snapshot: recent messages, notices
//                                  and `lastSeq`, so a reload shows the chat at once
//                                  and resumes with `auth.lastSeq` (minimal replay)
// sessionStorage (this tab only, survives a reload of the tab)
//   flexbridge.outbox.<id>         messages written here and not yet committed; a
//                                  reload sends them again with the same ids (the
//                                  bridge dedupes), and no other tab resends them
//
// Tabs write the transcript concurrently, so a write merges with what is stored
// (mergeSnapshots) instead of replacing it. Storage can be missing, full or
// forbidden (private modes, blocked cookies): every call here degrades to "not
// stored" and never throws.

import { mergeSnapshots, SNAPSHOT_LIMIT } from './store.js';

export const Keys = Object.freeze({
  customer: 'flexbridge.customer',
  transcript: (customerId) => `flexbridge.transcript.${customerId}`,
  outbox: (customerId) => `flexbridge.outbox.${customerId}`,
});

/** JSON over a Web Storage object (or anything with getItem/setItem/removeItem); never throws. */
export class JsonStorage {
  /** @param {() => Storage | null | undefined} getStorage */
  constructor(getStorage) {
    try {
      this.#storage = getStorage() ?? null;
    } catch {
      this.#storage = null; // e.g. SecurityError when storage is blocked
    }
  }

  #storage;

  get(key) {
    try {
      const text = this.#storage?.getItem(key);
      return text == null ? null : JSON.parse(text);
    } catch {
      return null;
    }
  }

  /** Returns false when the value could not be stored (no storage, quota). */
  set(key, value) {
    try {
      if (!this.#storage) return false;
      this.#storage.setItem(key, JSON.stringify(value));
      return true;
    } catch {
      return false;
    }
  }

  remove(key) {
    try {
      this.#storage?.removeItem(key);
    } catch {
      // nothing to do: it was not stored either
    }
  }
}

/** The stored identity, or null when there is none or it is malformed. */
export function loadCustomer(local) {
  const value = local.get(Keys.customer);
  if (
    value &&
    typeof value.token === 'string' &&
    value.token &&
    typeof value.customerId === 'string' &&
    value.customerId
  ) {
    return { token: value.token, customerId: value.customerId, name: typeof value.name === 'string' ? value.name : '' };
  }
  return null;
}

export function saveCustomer(local, { token, customerId, name }) {
  return local.set(Keys.customer, { token, customerId, name });
}

/** Forgets the identity and everything kept for it (after `invalid_token`). */
export function forgetCustomer(local, session, customerId) {
  local.remove(Keys.customer);
  if (customerId) {
    local.remove(Keys.transcript(customerId));
    session.remove(Keys.outbox(customerId));
  }
}

export function loadTranscript(local, customerId) {
  const value = local.get(Keys.transcript(customerId));
  return value && value.version === 1 && value.customerId === customerId ? value : null;
}

/**
 * Stores this tab's snapshot merged with what other tabs stored. When the
 * quota is short, keeps fewer (newest) items rather than nothing.
 */
export function saveTranscript(local, snapshot) {
  const key = Keys.transcript(snapshot.customerId);
  const merged = mergeSnapshots(snapshot, local.get(key));
  for (let limit = SNAPSHOT_LIMIT; limit >= 1; limit = Math.floor(limit / 2)) {
    const items = merged.items.slice(Math.max(0, merged.items.length - limit));
    if (local.set(key, { ...merged, items })) return true;
  }
  return false;
}

export function loadOutbox(session, customerId) {
  const value = session.get(Keys.outbox(customerId));
  return Array.isArray(value) ? value : [];
}

export function saveOutbox(session, customerId, entries) {
  if (entries.length === 0) {
    session.remove(Keys.outbox(customerId));
    return true;
  }
  return session.set(Keys.outbox(customerId), entries);
}
