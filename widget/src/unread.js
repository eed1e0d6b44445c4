// Unread agent messages: counted while the customer is not looking (the
// tab hidden, or the embedded panel closed), reset when they look again.
// The page shows the count in the tab's title (full page) or hands it to
// the embed's launcher badge (frame.js); a new one can also ring
// (`sound`). What was in the transcript before the page loaded is not
// "new": the first look at the items only sets the mark.

export class Unread {
  /** @param {{onChange?: (count: number) => void, onNew?: () => void}} [hooks] */
  constructor({ onChange = () => {}, onNew = () => {} } = {}) {
    this.#onChange = onChange;
    this.#onNew = onNew;
  }

  #onChange;
  #onNew;
  #mark = null;
  #count = 0;
  #looking = true;

  get count() {
    return this.#count;
  }

  get looking() {
    return this.#looking;
  }

  /** The customer looks at the chat (true) or not; looking clears the count. */
  setLooking(looking) {
    this.#looking = looking;
    if (looking && this.#count !== 0) {
      this.#count = 0;
      this.#onChange(0);
    }
  }

  /** Sees the store's items (display order); counts agent messages newer than the mark. */
  observe(items) {
    let highest = this.#mark ?? 0;
    let fresh = 0;
    for (const item of items) {
      if (item.kind !== 'message' || !Number.isSafeInteger(item.seq)) continue;
      if (item.seq > highest) {
        if (this.#mark !== null && item.direction === 'agent') fresh += 1;
        highest = item.seq;
      }
    }
    this.#mark = highest;
    if (fresh === 0) return;
    if (!this.#looking) {
      this.#count += fresh;
      this.#onChange(this.#count);
    }
    this.#onNew(this.#looking);
  }
}

/** `(3) Title`, or the title alone. */
export function titleWithCount(title, count) {
  return count > 0 ? `(${count}) ${title}` : title;
}

/** A short, quiet two-note chime (Web Audio; nothing to download). Never throws. */
export function chime(win = globalThis) {
  try {
    const Context = win.AudioContext ?? win.webkitAudioContext;
    if (!Context) return;
    const audio = new Context();
    const now = audio.currentTime;
    for (const [i, freq] of [660, 880].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.12);
      gain.gain.exponentialRampToValueAtTime(0.08, now + i * 0.12 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.12 + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.12);
      osc.stop(now + i * 0.12 + 0.22);
    }
    setTimeout(() => audio.close?.(), 600);
  } catch {
    // no sound: nothing else to do
  }
}
