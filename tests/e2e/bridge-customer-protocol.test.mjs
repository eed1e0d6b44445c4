// The customer protocol's refusals (docs/protocol.md), once per backend, with
// the official `socket.io-client`: nobody without a valid token reads or
// writes, oversized bodies are refused before anything reaches Flex, and a
// retried message id is stored and sent once.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { flexbridgeFor } from './lib/bridge.mjs';
import { BACKENDS } from './lib/harness.mjs';

/** The largest body the protocol accepts, in Unicode scalar values (docs/protocol.md). */
const BODY_MAX_CHARS = 1600;

for (const backend of BACKENDS) {
  describe(`${backend} backend`, () => {
    test('a wrong token is refused with invalid_token and a socket without one can neither send nor read', async (t) => {
      const { flex, connect, customer } = await flexbridgeFor(t, { backend, agents: 1 });
      const lena = await customer('Lena');
      await lena.send('Only for my agent');

      await assert.rejects(connect({ token: 'not-a-token' }), { message: 'invalid_token' });
      await assert.rejects(connect({ token: `${lena.token.slice(0, -4)}AAAA` }), { message: 'invalid_token' });
      await assert.rejects(connect({ auth: { token: 42 } }), { message: 'invalid_auth' });

      const stranger = await connect();
      assert.equal((await stranger.emit('message', { clientMessageId: 'x-1', body: 'Let me in' })).error?.code, 'not_registered');
      assert.equal((await stranger.emit('history', {})).error?.code, 'not_registered');
      assert.deepEqual(stranger.received('session'), [], 'no session for an anonymous socket');
      assert.deepEqual(
        stranger.received('message').map((m) => m.body),
        [],
        'the anonymous socket saw none of Lena’s messages',
      );

      await flex.customerMessagesArrived(['Only for my agent']);
      const everything = (await flex.channels()).flatMap((c) => c.messages.map((m) => m.body));
      assert.deepEqual(everything, ['Only for my agent'], 'nothing of the stranger reached Flex');
    });

    test('a body over 1600 characters is refused with message_too_long; 1600 arrive intact', async (t) => {
      const { flex, customer } = await flexbridgeFor(t, { backend, agents: 1 });
      const max = await customer('Max');
      const tooLong = '🙂'.repeat(BODY_MAX_CHARS + 1);
      const longest = `${'🙂'.repeat(BODY_MAX_CHARS - 10)}0123456789`;

      const refused = await max.emit('message', { clientMessageId: 'too-long', body: tooLong });
      assert.equal(refused.error?.code, 'message_too_long');
      assert.deepEqual(await flex.channels(), [], 'no channel was opened for it');

      const ack = await max.send(longest);
      assert.equal((await max.delivered(ack.clientMessageId)).status, 'delivered');
      const channel = await flex.channelWith(longest);
      assert.deepEqual(await flex.customerBodies(channel.sid), [longest]);
      assert.deepEqual(
        (await max.history()).map((m) => m.body),
        [longest],
        'the refused one was not stored',
      );
    });

    test('a message retried with the same client message id is stored and sent to Flex once', async (t) => {
      const { flex, customer, reconnect } = await flexbridgeFor(t, { backend, agents: 1 });
      const noa = await customer('Noa');
      const first = await noa.send('Did this go through?', { clientMessageId: 'retry-me' });
      // The retry comes from another socket (the ack was lost, the page reloaded).
      const again = await (await reconnect(noa)).send('Did this go through?', { clientMessageId: 'retry-me' });
      assert.deepEqual(again, first, 'the original seq, conversation and time');
      const next = await noa.send('Next message');
      assert.equal((await noa.delivered(next.clientMessageId)).status, 'delivered');

      const channel = await flex.channelWith('Did this go through?');
      assert.deepEqual(await flex.customerBodies(channel.sid), ['Did this go through?', 'Next message']);
      assert.deepEqual(
        (await noa.history()).map((m) => m.body),
        ['Did this go through?', 'Next message'],
      );
    });
  });
}
