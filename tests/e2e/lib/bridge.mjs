// One bridge under test, as a scenario sees it: a fresh emulator (Flex and
// its agents), `flexbridge serve` against it with the given backend on a
// fresh database, and customers connected to it. Everything is stopped and
// closed when the test ends.

import { bridgeFor, emulatorFor } from './harness.mjs';
import { connectCustomer } from './customer.mjs';
import { flexOf } from './flex.mjs';

/**
 * @param {import('node:test').TestContext} t
 * @param {object} options
 * @param {string} options.backend `chat` or `conversations`
 * @param {number} [options.agents] agents in Flex (capacity 1 each)
 * @param {number} [options.seed] the emulator's seed
 * @param {{burst: number, perSecond: number}} [options.rateLimit]
 * @param {string[]} [options.emulatorArgs]
 * @param {string[]} [options.bridgeArgs]
 * @param {string} [options.routing] conversations: `interactions` (default) or `studio`
 * @param {Record<string, string>} [options.bridgeEnv] more environment for the bridge (e.g. `RUST_LOG`)
 * @param {boolean} [options.keepStderr] keep all of the bridge's stderr (`bridge.process.stderrAll()`)
 */
export async function flexbridgeFor(t, { backend, routing, agents = 2, seed = 1, rateLimit, emulatorArgs = [], bridgeArgs = [], bridgeEnv = {}, keepStderr = false }) {
  const emulator = await emulatorFor(t, { agents, seed, extraArgs: emulatorArgs });
  const bridge = await bridgeFor(t, { emulator, backend, routing, rateLimit, extraArgs: bridgeArgs, env: bridgeEnv, keepStderr });
  const sockets = [];
  t.after(() => {
    for (const customer of sockets) customer.disconnect();
  });
  const track = (customer) => {
    sockets.push(customer);
    return customer;
  };
  return {
    emulator,
    bridge,
    flex: flexOf(emulator, backend),
    /** A socket to the bridge's current address (`{token, lastSeq}` to resume; nothing: anonymous). */
    connect: async (options) => track(await connectCustomer(bridge.url, options)),
    /** A new customer: a socket that registered with this name. */
    async customer(name) {
      const customer = track(await connectCustomer(bridge.url));
      await customer.register(name);
      return customer;
    },
    /** Another socket of the same customer (a second tab, a reload), at the bridge's current address. */
    reconnect: async (customer, options = {}) => track(await customer.reconnect({ url: bridge.url, ...options })),
  };
}
