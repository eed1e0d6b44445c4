import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChatApp, Connection, Phase } from '../src/app.js';
import { JsonStorage, Keys } from '../src/persist.js';
import { PAGE_LIMIT } from '../src/protocol.js';
import { Status } from '../src/store.js';
import { fakeClock, FakeSocket, MemoryStorage, tick } from './support.mjs';

/** One browser: storage shared by its tabs (local) and per tab (session). */
function browser() {
  return { local: new MemoryStorage(), session: new MemoryStorage() };
}

/** Opens the page in a tab of `b` and returns the app and its socket. */
function openPage(b = browser()) {
  const clock = fakeClock();
  let socket;
  let n = 0;
  const app = new ChatApp({
    createSocket: (auth) => {
      socket = new FakeSocket(auth);
      return socket;
    },
    local: new JsonStorage(() => b.local),
    session: new JsonStorage(() => b.session),
    schedule: clock.schedule,
    newId: () => `msg-${++n}`,
  });
  app.start();
  return { app, socket, clock, browser: b };
}

const msg = (seq, fields = {}) => ({
  seq,
  conversationId: 'conv-1',
  direction: 'agent',
  author: 'alice',
  body: `agent ${seq}`,
  clientMessageId: null,
  createdAt: '2026-11-25T17:20:00.000Z',
  ...fields,
});

function session(customerId, messages = [], conversation = null) {
  return { customer: { id: customerId, name: 'Bob' }, conversation, messages };
}

/** First visit → name → registered, with the session applied. */
async function registered(b = browser()) {
  const page = openPage(b);
  page.socket.accept();
  const done = page.app.register('  Bob  ');
  const [reg] = page.socket.emitsOf('register');
  reg.resolve({ ok: { customerId: 'cu-1', token: 'secret-token', name: 'Bob' } });
  page.socket.serverEmit('session', session('cu-1'));
  await done;
  await tick();
  return page;
}

describe('ChatApp: first visit', () => {
  test('asks for a name and connects anonymously', () => {
    const { app, socket } = openPage();
    assert.equal(app.state.phase, Phase.name);
    assert.deepEqual(socket.lastHandshake, {});
  });

  test('register sends the trimmed name and keeps the token in localStorage', async () => {
    const { app, socket, browser: b } = await registered();
    assert.deepEqual(socket.emitsOf('register')[0].payload, { name: 'Bob' });
    assert.equal(app.state.phase, Phase.chat);
    assert.deepEqual(JSON.parse(b.local.getItem(Keys.customer)), {
      token: 'secret-token',
      customerId: 'cu-1',
      name: 'Bob',
    });
  });

  test('an empty name is refused before anything is sent', async () => {
    const { app, socket } = openPage();
    socket.accept();
    await app.register('   ');
    assert.equal(socket.emitsOf('register').length, 0);
    assert.match(app.state.nameError, /name/);
    assert.equal(app.state.phase, Phase.name);
  });

  test("the server's refusal is shown on the name form", async () => {
    const { app, socket } = openPage();
    socket.accept();
    const done = app.register('Bob');
    socket.emitsOf('register')[0].resolve({ error: { code: 'invalid_name', message: 'Name is not allowed.' } });
    await done;
    assert.equal(app.state.nameError, 'Name is not allowed.');
    assert.equal(app.state.registering, false);
    assert.equal(app.state.phase, Phase.name);
  });

  test('a register without answer starts over on a fresh anonymous connection', async () => {
    const { app, socket } = openPage();
    socket.accept();
    const done = app.register('Bob');
    socket.emitsOf('register')[0].reject(new Error('operation has timed out'));
    await done;
    assert.match(app.state.nameError, /did not answer/);
    assert.equal(socket.handshakes.length, 2);
    assert.deepEqual(socket.lastHandshake, {});
  });

  test('the session may arrive before the register ack', async () => {
    const { app, socket } = openPage();
    socket.accept();
    const done = app.register('Bob');
    socket.serverEmit('session', session('cu-1', [], { id: 'conv-1', state: 'open', agent: null }));
    socket.emitsOf('register')[0].resolve({ ok: { customerId: 'cu-1', token: 't', name: 'Bob' } });
    await done;
    assert.equal(app.state.phase, Phase.chat);
    assert.equal(app.store.conversation.id, 'conv-1');
    app.send('hello');
    assert.equal(socket.emitsOf('message').length, 1, 'messages flow right after registering');
  });
});

describe('ChatApp: the pre-engagement form', () => {
  test('register sends the filled fields trimmed and leaves the empty ones out', async () => {
    const { app, socket } = openPage();
    socket.accept();
    const done = app.register({ name: ' Mia ', email: ' mia@example.com ', question: '   ', topic: 'Orders' });
    assert.deepEqual(socket.emitsOf('register')[0].payload, { name: 'Mia', email: 'mia@example.com', topic: 'Orders' });
    socket.emitsOf('register')[0].resolve({ ok: { customerId: 'cu-9', token: 't', name: 'Mia' } });
    await done;
    assert.equal(app.state.phase, Phase.chat);
  });

  test('the bridge’s per-field errors are kept by field, with the form’s message', async () => {
    const { app, socket } = openPage();
    socket.accept();
    const done = app.register({ name: 'Mia', email: 'nope' });
    socket.emitsOf('register')[0].resolve({
      error: {
        code: 'invalid_form',
        message: 'some fields of the form are not valid',
        fields: { email: { code: 'invalid_email', message: 'not an e-mail address' } },
      },
    });
    await done;
    assert.equal(app.state.phase, Phase.name);
    assert.deepEqual(app.state.fieldErrors, { email: 'invalid_email' });
    assert.equal(app.state.nameError, 'some fields of the form are not valid');
  });

  test('an empty name is refused as a required field before anything is sent', async () => {
    const { app, socket } = openPage();
    socket.accept();
    await app.register({ name: '  ', email: 'a@b.co' });
    assert.deepEqual(app.state.fieldErrors, { name: 'required' });
    assert.equal(socket.emitsOf('register').length, 0);
  });
});

describe('ChatApp: messages', () => {
  test('a message gets a fresh clientMessageId and shows sending → sent', async () => {
    const { app, socket } = await registered();
    const result = app.send('  hello\nthere  ');
    assert.deepEqual(result, { ok: 'msg-1' });
    const [emit] = socket.emitsOf('message');
    assert.deepEqual(emit.payload, { clientMessageId: 'msg-1', body: 'hello\nthere' });
    assert.equal(app.store.byClientMessageId('msg-1').status, Status.sending);
    emit.resolve({ ok: { seq: 1, clientMessageId: 'msg-1', conversationId: 'conv-1', createdAt: 'x' } });
    await tick();
    assert.equal(app.store.byClientMessageId('msg-1').status, Status.sent);
    socket.serverEmit('delivery', { seq: 1, clientMessageId: 'msg-1', status: 'delivered' });
    assert.equal(app.store.byClientMessageId('msg-1').status, Status.delivered);
  });

  test('empty and too long messages are not sent', async () => {
    const { app, socket } = await registered();
    assert.deepEqual(app.send('   '), { empty: true });
    assert.match(app.send('x'.repeat(1601)).error, /too long/);
    assert.equal(socket.emitsOf('message').length, 0);
  });

  test('agent messages, agent joined and chat ended reach the store', async () => {
    const { app, socket } = await registered();
    socket.serverEmit('conversation', { id: 'conv-1', state: 'opening', agent: null });
    socket.serverEmit('agent:joined', { conversationId: 'conv-1', agentName: 'alice' });
    socket.serverEmit('message', msg(2, { body: '<b>hi</b>' }));
    socket.serverEmit('chat:ended', { conversationId: 'conv-1', reason: 'agent_ended' });
    assert.equal(app.store.items().length, 3);
    assert.equal(app.store.ended, true);
    app.newChat();
    assert.equal(app.store.ended, false);
  });
});

describe('ChatApp: the customer ends the chat', () => {
  /** Registered, in an open conversation, and "End chat" was clicked. */
  async function askedToEnd() {
    const page = await registered();
    page.socket.serverEmit('conversation', { id: 'conv-1', state: 'open', agent: null });
    page.app.askEndChat();
    return page;
  }

  test('"End chat" applies only while a conversation is opening or open', async () => {
    const { app, socket } = await registered();
    assert.equal(app.canEndChat, false, 'no conversation yet');
    app.askEndChat();
    assert.equal(app.state.confirmingEnd, false);
    socket.serverEmit('conversation', { id: 'conv-1', state: 'opening', agent: null });
    assert.equal(app.canEndChat, true);
    socket.serverEmit('conversation', { id: 'conv-1', state: 'open', agent: null });
    assert.equal(app.canEndChat, true);
    socket.serverEmit('chat:ended', { conversationId: 'conv-1', reason: 'agent_ended' });
    assert.equal(app.canEndChat, false);
  });

  test('it asks first; cancelling sends nothing', async () => {
    const { app, socket } = await askedToEnd();
    assert.equal(app.state.confirmingEnd, true);
    app.cancelEndChat();
    assert.equal(app.state.confirmingEnd, false);
    assert.equal(socket.emitsOf('chat:end').length, 0);
  });

  test('confirmed, it emits chat:end {} and shows the chat as ended once', async () => {
    const { app, socket } = await askedToEnd();
    const done = app.endChat();
    assert.equal(app.state.ending, true);
    app.endChat(); // a second click while the first is on its way
    const ends = socket.emitsOf('chat:end');
    assert.equal(ends.length, 1);
    assert.deepEqual(ends[0].payload, {});
    ends[0].resolve({ ok: { ended: true, conversationId: 'conv-1' } });
    await done;
    assert.equal(app.state.ending, false);
    assert.equal(app.state.confirmingEnd, false);
    assert.equal(app.store.ended, true);
    assert.equal(app.canEndChat, false);
    // The bridge's own chat:ended (to every tab) changes nothing more.
    socket.serverEmit('chat:ended', { conversationId: 'conv-1', reason: 'customer_ended' });
    const ended = app.store.items().filter((item) => item.kind === 'notice');
    assert.equal(ended.length, 1);
    // The existing "start a new chat" state follows.
    app.newChat();
    assert.equal(app.store.ended, false);
  });

  test('nothing to end (another tab ended it): the ack says so and nothing breaks', async () => {
    const { app, socket } = await askedToEnd();
    const done = app.endChat();
    socket.emitsOf('chat:end')[0].resolve({ ok: { ended: false, conversationId: null } });
    await done;
    assert.equal(app.state.confirmingEnd, false);
    assert.equal(app.state.endError, null);
  });

  test("the server's error is shown and the confirmation stays", async () => {
    const { app, socket } = await askedToEnd();
    const done = app.endChat();
    socket.emitsOf('chat:end')[0].resolve({ error: { code: 'internal', message: '<b>try again</b>' } });
    await done;
    assert.equal(app.state.ending, false);
    assert.equal(app.state.confirmingEnd, true);
    assert.equal(app.state.endError, '<b>try again</b>');
    assert.equal(app.store.ended, false);
  });

  test('no answer: a timeout error, and it can be tried again', async () => {
    const { app, socket } = await askedToEnd();
    const done = app.endChat();
    socket.emitsOf('chat:end')[0].reject(new Error('operation has timed out'));
    await done;
    assert.match(app.state.endError, /did not answer/);
    const again = app.endChat();
    socket.emitsOf('chat:end')[1].resolve({ ok: { ended: true, conversationId: 'conv-1' } });
    await again;
    assert.equal(app.store.ended, true);
  });
});

describe('ChatApp: returning visit and reconnects', () => {
  test('a stored token skips the name form and resumes from lastSeq', async () => {
    const b = browser();
    {
      const first = await registered(b);
      first.socket.serverEmit('message', msg(1));
      first.socket.serverEmit('message', msg(2));
      first.app.stop();
    }
    const { app, socket } = openPage(b);
    assert.equal(app.state.phase, Phase.chat, 'no name prompt');
    assert.deepEqual(socket.lastHandshake, { token: 'secret-token', lastSeq: 2 });
    assert.deepEqual(
      app.store.items().map((i) => i.seq),
      [1, 2],
      'the stored transcript shows at once',
    );
    socket.accept();
    socket.serverEmit('session', session('cu-1', [msg(2), msg(3)]));
    await tick();
    assert.deepEqual(
      app.store.items().map((i) => i.seq),
      [1, 2, 3],
    );
  });

  test('each reconnect attempt presents the newest lastSeq', async () => {
    const { socket } = await registered();
    socket.serverEmit('message', msg(5));
    socket.drop();
    assert.deepEqual(socket.lastHandshake, { token: 'secret-token', lastSeq: 5 });
  });

  test('connection states: connecting, connected, reconnecting', async () => {
    const { app, socket } = openPage();
    assert.equal(app.state.connection, Connection.connecting);
    socket.accept();
    assert.equal(app.state.connection, Connection.connected);
    socket.drop();
    assert.equal(app.state.connection, Connection.reconnecting);
  });

  test('invalid_token forgets the identity and asks for a name again', async () => {
    const b = browser();
    (await registered(b)).app.stop();
    const { app, socket } = openPage(b);
    socket.refuse('invalid_token');
    assert.equal(app.state.phase, Phase.name);
    assert.equal(b.local.getItem(Keys.customer), null);
    assert.equal(b.local.getItem(Keys.transcript('cu-1')), null);
    assert.deepEqual(socket.lastHandshake, {}, 'reconnects anonymously so register works');
    assert.equal(app.state.expired, true, 'the page says the previous chat has expired');
  });

  test('a first visit is not told that a chat expired', () => {
    const { app } = openPage();
    assert.equal(app.state.expired, false);
  });

  test('the transcript is fetched with the resume token and its file name', async () => {
    const b = browser();
    (await registered(b)).app.stop();
    const calls = [];
    const app = new ChatApp({
      createSocket: (auth) => new FakeSocket(auth),
      local: new JsonStorage(() => b.local),
      session: new JsonStorage(() => b.session),
      fetch: async (url, init) => {
        calls.push({ url, auth: init.headers.Authorization });
        return {
          ok: true,
          headers: { get: () => 'attachment; filename="chat-2026-11-25.txt"' },
          text: async () => 'the transcript',
        };
      },
    });
    app.start();
    assert.deepEqual(await app.transcript(), { ok: { text: 'the transcript', filename: 'chat-2026-11-25.txt' } });
    assert.deepEqual(calls, [{ url: 'transcript', auth: 'Bearer secret-token' }]);
    const refused = new ChatApp({
      createSocket: (auth) => new FakeSocket(auth),
      local: new JsonStorage(() => b.local),
      session: new JsonStorage(() => b.session),
      fetch: async () => ({ ok: false }),
    });
    refused.start();
    assert.match((await refused.transcript()).error, /could not be downloaded/);
  });

  test('a refused connection for another reason is retried by the app', async () => {
    const { app, socket, clock } = openPage();
    socket.refuse('server_error');
    assert.equal(app.state.connection, Connection.offline);
    assert.equal(clock.pending().length, 1);
    clock.runAll();
    assert.equal(socket.handshakes.length, 2);
  });

  test('a message written while disconnected is sent after the session', async () => {
    const { app, socket } = await registered();
    socket.drop();
    app.send('are you there?');
    assert.equal(socket.emitsOf('message').length, 0);
    socket.accept();
    assert.equal(socket.emitsOf('message').length, 0, 'waits for the session');
    socket.serverEmit('session', session('cu-1'));
    await tick();
    assert.equal(socket.emitsOf('message').length, 1);
  });

  test('a message still sending survives a reload of the tab and keeps its id', async () => {
    const b = browser();
    const first = await registered(b);
    first.app.send('do not lose me');
    const [lost] = first.socket.emitsOf('message');
    first.app.stop(); // reload before the ack

    const { app, socket } = openPage(b);
    assert.equal(app.store.byClientMessageId(lost.payload.clientMessageId).status, Status.sending);
    socket.accept();
    socket.serverEmit('session', session('cu-1'));
    await tick();
    const [again] = socket.emitsOf('message');
    assert.deepEqual(again.payload, lost.payload);
  });

  test('a full session page is followed by history until the gap is closed', async () => {
    const { app, socket } = await registered();
    socket.drop();
    socket.accept();
    const page = Array.from({ length: PAGE_LIMIT }, (_, i) => msg(i + 1));
    socket.serverEmit('session', session('cu-1', page));
    await tick();
    const [history] = socket.emitsOf('history');
    assert.deepEqual(history.payload, { since: PAGE_LIMIT, limit: PAGE_LIMIT });
    history.resolve({ ok: { messages: [msg(PAGE_LIMIT + 1)] } });
    await tick();
    assert.equal(app.store.lastSeq, PAGE_LIMIT + 1);
    assert.equal(socket.emitsOf('history').length, 1);
  });

  test('a tab on the name form adopts the identity another tab registered', async () => {
    const b = browser();
    const waiting = openPage(b);
    waiting.socket.accept();
    await registered(b);
    assert.equal(waiting.app.adoptStoredCustomer(), true);
    assert.equal(waiting.app.state.phase, Phase.chat);
    assert.deepEqual(waiting.socket.lastHandshake, { token: 'secret-token', lastSeq: 0 });
  });
});
