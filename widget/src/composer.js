// The send box: a textarea (`dir="auto"`; Enter sends, Shift+Enter is a
// new line, never while an IME composes a word), the Send button, and the
// line under it for an error or the length counter. It hands the text to
// `onSend` and clears itself when that accepted it. An attachment button
// (a file picker, drop and paste) belongs here too: it would hand files
// to its own callback next to `onSend`.

import { BODY_MAX_CHARS, charCount } from './protocol.js';

/** Show the length counter once a message gets this close to the limit. */
const COUNTER_FROM = BODY_MAX_CHARS - 200;

export class Composer {
  /**
   * @param {{form: HTMLFormElement, input: HTMLTextAreaElement, error: HTMLElement}} nodes
   * @param {(text: string) => {ok?: string, empty?: boolean, error?: string}} onSend
   * @param {(key: string, vars?: object) => string} t
   */
  constructor({ form, input, error }, onSend, t) {
    this.form = form;
    this.input = input;
    this.errorNode = error;
    this.onSend = onSend;
    this.t = t;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        this.send();
      }
    });
    input.addEventListener('input', () => this.#hint());
  }

  /** Sends what is typed; true when it was accepted. */
  send() {
    const result = this.onSend(this.input.value);
    if (result.ok) {
      this.input.value = '';
      this.setError(null);
      return true;
    }
    if (result.error) this.setError(result.error);
    return false;
  }

  #hint() {
    const n = charCount(this.input.value.trim());
    if (n > BODY_MAX_CHARS) this.setError(this.t('tooLong', { n, max: BODY_MAX_CHARS }));
    else if (n >= COUNTER_FROM) this.setError(this.t('counter', { n, max: BODY_MAX_CHARS }), 'counter');
    else this.setError(null);
  }

  setError(text, kind = 'error') {
    const node = this.errorNode;
    node.hidden = !text;
    node.textContent = text ?? '';
    node.dataset.kind = kind;
    if (kind === 'counter') node.removeAttribute('role');
    else node.setAttribute('role', 'alert');
  }

  focus() {
    this.input.focus();
  }
}
