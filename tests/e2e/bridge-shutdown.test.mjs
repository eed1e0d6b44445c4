// A graceful shutdown (SIGTERM) of the real process, once per backend:
// deliveries in flight finish and their customers are told before the
// sockets close; the process exits cleanly, without a panic; a client
// that connects while the bridge drains is refused in a way the protocol
// documents (docs/protocol.md, "Connecting"), never "Invalid namespace".

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { flexbridgeFor } from './lib/bridge.mjs';
import { connectCustomer } from './lib/customer.mjs';
import { BACKENDS, waitFor } from './lib/harness.mjs';

/** How long Flex holds the answer to the create in flight: the drain's length. */
const HELD_MS = 4_000;

/** A customer whose chat is open in Flex, and a message whose create Flex executed but has not answered yet. */
async function deliveryInFlight(world, name) {
  const customer = await world.customer(name);
  const opening = await customer.send(`${name} opens the chat`);
  assert.equal((await customer.delivered(opening.clientMessageId)).status, 'delivered');
  const path = world.flex.profile.messageCreatePath;
  await world.flex.api.faults.http({ method: 'POST', path, kind: 'delay', delay_ms: HELD_MS, count: 1 });
  const held = await customer.send(`${name}'s message in flight`);
  await world.flex.customerMessagesArrived([`${name}'s message in flight`]);
  return { customer, held };
}

/** Opens an Engine.IO long-polling session, connects namespace `/`, and never polls again. */
async function stalledPollingSession(url) {
  const open = await (await fetch(`${url}/socket.io/?EIO=4&transport=polling`)).text();
  const { sid } = JSON.parse(open.slice(1));
  const connected = await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain;charset=UTF-8' },
    body: '40',
  });
  assert.equal(connected.status, 200);
}

for (const backend of BACKENDS) {
  describe(`${backend} backend`, () => {
    test('SIGTERM with a delivery in flight finishes it, tells the customer, and exits without a panic', async (t) => {
      const world = await flexbridgeFor(t, { backend });
      const { customer, held } = await deliveryInFlight(world, 'Kim');
      const bridge = world.bridge.process;

      await bridge.kill('SIGTERM');

      const stderr = bridge.stderr();
      assert.doesNotMatch(stderr, /panick?ed/, stderr);
      assert.deepEqual(bridge.exitStatus(), { code: 0, signal: null }, stderr);
      const delivery = customer.received('delivery').find((d) => d.clientMessageId === held.clientMessageId);
      assert.equal(delivery?.status, 'delivered', `told before the socket closed: ${JSON.stringify(customer.events)}`);
      const closed = await customer.next('disconnect');
      assert.notEqual(closed.reason, 'io server disconnect', 'socket.io-client reconnects after any other reason');
    });

    test('a client connecting while the bridge drains is refused with a documented, retryable answer', async (t) => {
      const world = await flexbridgeFor(t, { backend });
      const { customer } = await deliveryInFlight(world, 'Lou');
      const bridge = world.bridge.process;
      // A polling client that stopped polling (a phone put to sleep): its
      // session ends only when the server's heartbeat gives up on it.
      await stalledPollingSession(world.bridge.url);

      const exited = bridge.kill('SIGTERM');
      await waitFor(() => /shutting down/.test(bridge.stderr()), { message: 'the bridge began its shutdown' });
      const refused = await connectCustomer(world.bridge.url, { token: customer.token }).then(
        (late) => {
          late.disconnect();
          return null;
        },
        (err) => err,
      );

      await exited;
      assert.ok(refused, 'a connection during the drain is not taken');
      const retryable = refused.message === 'unavailable' || refused.type === 'TransportError';
      assert.ok(retryable, `refused with ${refused.message} (${refused.type})`);
    });
  });
}
