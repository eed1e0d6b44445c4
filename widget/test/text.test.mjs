// Links, business hours and unread counting: the pure parts of the page.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOpen, localTime } from '../src/hours.js';
import { linkify } from '../src/linkify.js';
import { titleWithCount, Unread } from '../src/unread.js';

describe('linkify', () => {
  test('http, https and mailto become links; trailing punctuation stays text', () => {
    assert.deepEqual(linkify('See https://example.com/a?b=1. Or mail mailto:help@example.com!'), [
      { text: 'See ' },
      { text: 'https://example.com/a?b=1', href: 'https://example.com/a?b=1' },
      { text: '. Or mail ' },
      { text: 'mailto:help@example.com', href: 'mailto:help@example.com' },
      { text: '!' },
    ]);
    assert.deepEqual(linkify('(docs at http://x.example/p)'), [
      { text: '(docs at ' },
      { text: 'http://x.example/p', href: 'http://x.example/p' },
      { text: ')' },
    ]);
  });

  test('nothing else is a link', () => {
    for (const text of ['javascript:alert(1)', 'data:text/html,<b>x</b>', 'www.example.com', 'ftp://x.example', 'plain text']) {
      assert.deepEqual(linkify(text), [{ text }], text);
    }
    assert.deepEqual(linkify(''), [{ text: '' }]);
  });
});

describe('business hours', () => {
  const week = [[[540, 1020]], [[540, 1020]], [[540, 1020]], [[540, 1020]], [[540, 1020]], [[600, 720]], []];

  test('open and closed follow the schedule in its own time zone', () => {
    // Monday 2026-11-30 08:30 UTC is 09:30 in Berlin (CET, UTC+1).
    const monday = new Date('2026-11-30T08:30:00Z');
    assert.deepEqual(localTime(monday, 'Europe/Berlin'), { day: 0, minute: 570 });
    assert.equal(isOpen({ timeZone: 'Europe/Berlin', week }, monday), true);
    assert.equal(isOpen({ timeZone: 'UTC', week }, monday), false, '08:30 in UTC is before nine');
    assert.equal(isOpen({ timeZone: 'Europe/Berlin', week }, new Date('2026-12-06T11:00:00Z')), false, 'Sunday');
    assert.equal(isOpen({ timeZone: 'Europe/Berlin', week }, new Date('2026-12-05T10:00:00Z')), true, 'Saturday 11:00');
  });

  test('no hours, or an unknown zone, is always open', () => {
    assert.equal(isOpen(null), true);
    assert.equal(isOpen({ timeZone: 'Mars/Olympus', week: [[], [], [], [], [], [], []] }), true);
  });
});

describe('unread', () => {
  const agent = (seq) => ({ kind: 'message', seq, direction: 'agent' });
  const mine = (seq) => ({ kind: 'message', seq, direction: 'customer' });

  test('counts agent messages that arrive while the customer does not look', () => {
    const changes = [];
    const unread = new Unread({ onChange: (n) => changes.push(n) });
    unread.observe([agent(1), mine(2)]);
    assert.equal(unread.count, 0, 'what was there at load is not new');
    unread.setLooking(false);
    unread.observe([agent(1), mine(2), agent(3), mine(4), agent(5)]);
    assert.equal(unread.count, 2);
    unread.observe([agent(1), mine(2), agent(3), mine(4), agent(5)]);
    assert.equal(unread.count, 2, 'the same items again count nothing');
    unread.setLooking(true);
    assert.equal(unread.count, 0);
    assert.deepEqual(changes, [2, 0]);
    assert.equal(titleWithCount('Chat', 3), '(3) Chat');
    assert.equal(titleWithCount('Chat', 0), 'Chat');
  });
});
