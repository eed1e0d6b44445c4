// The customer Socket.IO protocol (docs/protocol.md), as the web chat uses it:
// event names, limits, and which ack errors are worth retrying. Named once here
// so the rest of the widget never spells an event name or a limit itself.

/** Client → server events (each is emitted with an acknowledgement). */
export const Emit = Object.freeze({
  register: 'register',
  message: 'message',
  history: 'history',
  chatEnd: 'chat:end',
});

/** Server → client events. */
export const On = Object.freeze({
  session: 'session',
  message: 'message',
  conversation: 'conversation',
  agentJoined: 'agent:joined',
  chatEnded: 'chat:ended',
  delivery: 'delivery',
});

/** `connect_error` message when the handshake token is unknown. */
export const INVALID_TOKEN = 'invalid_token';

export const NAME_MAX_CHARS = 100;
export const BODY_MAX_CHARS = 1600;
/** The most messages `session` or one `history` call carries. */
export const PAGE_LIMIT = 500;

/**
 * Ack error codes after which sending the same message again can succeed.
 * Every other code (invalid_payload, message_too_long, empty_message,
 * not_registered, …) is final for that message.
 */
const RETRYABLE_CODES = new Set(['rate_limited', 'internal']);

export function isRetryableError(error) {
  return RETRYABLE_CODES.has(error?.code);
}

/**
 * Length in characters as the bridge counts them (Unicode scalar values, like
 * Rust's `chars()`), not UTF-16 code units: an emoji is one character.
 */
export function charCount(text) {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

/** Returns `{ ok: trimmedName }` or `{ error: code }` (`required`, `too_long`: the bridge's field codes). */
export function checkName(raw) {
  const name = String(raw ?? '').trim();
  if (name.length === 0) return { error: 'required' };
  if (charCount(name) > NAME_MAX_CHARS) return { error: 'too_long' };
  return { ok: name };
}

/** Returns `{ ok: trimmedBody }` or `{ error: humanText }` (empty → `{ empty: true }`). */
export function checkBody(raw) {
  const body = String(raw ?? '').trim();
  if (body.length === 0) return { empty: true };
  const n = charCount(body);
  if (n > BODY_MAX_CHARS) {
    return { error: `Message too long: ${n} of ${BODY_MAX_CHARS} characters.` };
  }
  return { ok: body };
}

/**
 * Splits an ack into `{ ok }` or `{ error: {code, message} }`; anything else the
 * server could send (it should not) becomes an `invalid_ack` error.
 */
export function readAck(ack) {
  if (ack && typeof ack === 'object') {
    if ('ok' in ack) return { ok: ack.ok };
    if (ack.error && typeof ack.error === 'object') {
      const error = {
        code: String(ack.error.code ?? 'unknown'),
        message: String(ack.error.message ?? ack.error.code ?? 'Unknown error'),
      };
      // `register`'s per-field errors (`{email: {code, message}}`).
      if (ack.error.fields && typeof ack.error.fields === 'object') error.fields = ack.error.fields;
      return { error };
    }
  }
  return { error: { code: 'invalid_ack', message: 'The server sent an unexpected answer.' } };
}
