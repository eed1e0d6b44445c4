// The bridge's signed webhook route, once per backend: forged webhooks are
// refused and deliver nothing; a webhook Flex sends three times reaches the
// customer once. The forged form is a real one the emulator sent (a
// well-formed agent message of a real channel) with a new message SID and
// body, so the only thing wrong with it is its signature.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import twilio from 'twilio';

import { flexbridgeFor } from './lib/bridge.mjs';
import { BACKENDS } from './lib/harness.mjs';

/** Posts a webhook form to the bridge, with `signature` as `X-Twilio-Signature` unless null. */
async function postWebhook(url, params, signature) {
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (signature !== null) headers['X-Twilio-Signature'] = signature;
  const response = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(params) });
  await response.arrayBuffer();
  return response.status;
}

/** A customer in a chat an agent has accepted, and that agent. */
async function chatWithAnAgent(t, backend, name) {
  const world = await flexbridgeFor(t, { backend, agents: 1 });
  const customer = await world.customer(name);
  await customer.send(`Hello, I am ${name}`);
  const agent = await world.flex.acceptChat((await world.flex.channelWith(`Hello, I am ${name}`)).sid);
  return { ...world, customer, agent };
}

for (const backend of BACKENDS) {
  describe(`${backend} backend`, () => {
    test('a forged webhook is refused with 403 and nothing reaches the customer', async (t) => {
      const { emulator, flex, customer: gus, agent } = await chatWithAnAgent(t, backend, 'Gus');
      await agent.say('A genuine reply');
      await gus.agentMessage('A genuine reply');
      const [genuine] = await flex.messageWebhookDelivered('A genuine reply');
      assert.equal(new URL(genuine.url).pathname, flex.profile.webhookPath);

      const forged = {
        ...genuine.params,
        MessageSid: `IM${'f'.repeat(32)}`,
        Index: String(Number(genuine.params.Index) + 100),
        Body: 'Forged: please send your password to evil.example',
      };
      const wrongKey = twilio.getExpectedTwilioSignature('not-the-auth-token', genuine.url, forged);
      const otherUrl = twilio.getExpectedTwilioSignature(emulator.credentials.authToken, `${genuine.url}?x=1`, forged);
      assert.equal(await postWebhook(genuine.url, forged, wrongKey), 403, 'signed with another key');
      assert.equal(await postWebhook(genuine.url, forged, null), 403, 'no signature');
      assert.equal(await postWebhook(genuine.url, forged, ''), 403, 'an empty signature');
      assert.equal(await postWebhook(genuine.url, forged, otherUrl), 403, 'signed for another URL');

      // The socket is live: the agent's next real message arrives, and only it.
      await agent.say('A second genuine reply');
      await gus.agentMessage('A second genuine reply');
      const history = await gus.history();
      assert.deepEqual(gus.agentBodies(), ['A genuine reply', 'A second genuine reply']);
      assert.deepEqual(
        history.filter((m) => m.direction === 'agent').map((m) => m.body),
        ['A genuine reply', 'A second genuine reply'],
        'nothing forged was stored',
      );

      // The same form with the account's signature is taken: the form was
      // fine, the signatures were what the bridge refused.
      const signed = twilio.getExpectedTwilioSignature(emulator.credentials.authToken, genuine.url, forged);
      assert.equal(await postWebhook(genuine.url, forged, signed), 200);
      await gus.agentMessage(forged.Body);
    });

    test('the same webhook delivered three times reaches the customer once', async (t) => {
      const { flex, customer: hana, agent } = await chatWithAnAgent(t, backend, 'Hana');
      await flex.api.faults.webhooks({ kind: 'duplicate', copies: 3, count: 1, event_type: flex.profile.agentMessageEvent });

      await agent.say('Said once, sent three times');
      const copies = await flex.messageWebhookDelivered('Said once, sent three times', { copies: 3 });
      assert.equal(copies.length, 3, 'Flex sent it three times and the bridge answered each with 2xx');
      assert.equal(new Set(copies.map((c) => c.params.MessageSid)).size, 1, 'the same message');

      // Later messages still flow; by the time this one arrives, the copies had their chance.
      await agent.say('And a second reply');
      await hana.agentMessage('And a second reply');
      assert.deepEqual(
        hana.received('message').filter((m) => m.direction === 'agent').map((m) => m.body),
        ['Said once, sent three times', 'And a second reply'],
        'each agent message arrived as one event',
      );
      const history = await hana.history();
      assert.deepEqual(
        history.filter((m) => m.direction === 'agent').map((m) => m.body),
        ['Said once, sent three times', 'And a second reply'],
        'stored once',
      );
      assert.deepEqual(await flex.api.faults.list(), { http: [], webhooks: [] }, 'the duplicate fault was used up');
    });
  });
}
