// Safe links in message text: `http://`, `https://` and `mailto:` become
// links, nothing else does (no `javascript:`, no `data:`, no bare
// domains). The text is split into segments; the view puts every segment
// in with `textContent` (a link's text too) and sets `href` only to what
// `URL` parsed with one of those schemes, with `rel="noopener noreferrer"`
// and `target="_blank"`. Trailing punctuation (`.`, `,`, `)`…) stays
// text, as people write "see https://example.com."

const CANDIDATE = /\b(?:https?:\/\/|mailto:)[^\s<>"]+/gi;
const SCHEMES = new Set(['http:', 'https:', 'mailto:']);
const TRAILING = /[.,;:!?'")\]}]+$/;

/** `[{text}, {text, href}, …]` covering all of `text`, in order. */
export function linkify(text) {
  const segments = [];
  let last = 0;
  for (const match of String(text).matchAll(CANDIDATE)) {
    let candidate = match[0];
    const trailing = candidate.match(TRAILING)?.[0] ?? '';
    // Keep a closing parenthesis that closes one opened in the link.
    let keep = trailing;
    if (trailing.startsWith(')') && (candidate.match(/\(/g)?.length ?? 0) > 0) keep = trailing.slice(1);
    candidate = candidate.slice(0, candidate.length - keep.length);
    const href = safeHref(candidate);
    if (!href) continue;
    if (match.index > last) segments.push({ text: text.slice(last, match.index) });
    segments.push({ text: candidate, href });
    last = match.index + candidate.length;
  }
  if (last < text.length || segments.length === 0) segments.push({ text: text.slice(last) });
  return segments;
}

function safeHref(candidate) {
  try {
    const url = new URL(candidate);
    if (!SCHEMES.has(url.protocol)) return null;
    if (url.protocol !== 'mailto:' && !url.hostname) return null;
    return url.href;
  } catch {
    return null;
  }
}
