// What Flex (the emulator) holds and what its agents do, the same way for
// both backends of the bridge (docs/twilio-reference.md §9.1 Programmable
// Chat, §9.2 Flex Conversations), so one scenario body runs against either.
//
// - `BACKEND_PROFILES[backend]`: the few facts that differ per backend (the
//   bridge's webhook route, the agent-message event, the message-create path,
//   the webhook that says a chat ended).
// - `flexOf(emulator, backend)`: the emulator's state (`GET /_emulator/state`)
//   read as channels (a Chat channel or a Conversation) with their messages,
//   and tasks with the channel they belong to; and agents acting through the
//   control API (docs/architecture.md §3.4).

import { control, waitFor } from './harness.mjs';
import { parseJson } from './middleware.mjs';

/**
 * @typedef {object} BackendProfile
 * @property {string} webhookPath where Flex posts to the bridge, under its URL
 * @property {string} agentMessageEvent the webhook `EventType` of a message
 * @property {string} messageCreatePath the REST route of a customer message (fault pattern, docs §3.4)
 * @property {(delivery: any, channelSid: string) => boolean} isEndWebhookOf whether a webhook log
 *   entry is Flex telling the bridge this channel ended (Chat `onChannelUpdated`, Conversations `StateTo=closed`)
 * @property {(state: any) => FlexChannel[]} channels
 * @property {(taskAttributes: any) => string | undefined} channelOfTask
 */

/**
 * @typedef {object} FlexChannel a Chat channel or a Conversation
 * @property {string} sid CH…
 * @property {boolean} closed the chat was ended (Chat: attributes `status` INACTIVE; Conversations: state `closed`)
 * @property {FlexMessage[]} messages in index order
 *
 * @typedef {object} FlexMessage
 * @property {string} sid IM…
 * @property {number} index
 * @property {string} author the identity that wrote it (Chat `from`, Conversations `author`)
 * @property {string} body
 * @property {any} attributes parsed JSON (null when absent or not JSON)
 * @property {any} media its file (`{sid, filename, content_type, size}`) or null
 *
 * @typedef {object} FlexTask
 * @property {string} sid WT…
 * @property {string | undefined} channelSid the channel/conversation its attributes name
 * @property {string} assignmentStatus
 * @property {any} attributes parsed
 */

const byIndex = (a, b) => a.index - b.index;

/** @type {Record<string, BackendProfile>} */
export const BACKEND_PROFILES = {
  chat: {
    webhookPath: '/webhooks/chat',
    agentMessageEvent: 'onMessageSent',
    messageCreatePath: '/v2/Services/*/Channels/*/Messages',
    isEndWebhookOf: (d, channelSid) => d.event_type === 'onChannelUpdated' && d.params.ChannelSid === channelSid,
    channels: (state) =>
      (state.chat?.channels ?? []).map((channel) => ({
        sid: channel.sid,
        closed: parseJson(channel.attributes)?.status === 'INACTIVE',
        messages: (channel.messages ?? [])
          .map((m) => ({ sid: m.sid, index: m.index, author: m.from, body: m.body, attributes: parseJson(m.attributes), media: m.media ?? null }))
          .sort(byIndex),
      })),
    channelOfTask: (attributes) => attributes?.channelSid,
  },
  conversations: {
    webhookPath: '/webhooks/conversations',
    agentMessageEvent: 'onMessageAdded',
    messageCreatePath: '/v1/Services/*/Conversations/*/Messages',
    isEndWebhookOf: (d, channelSid) => d.params.StateTo === 'closed' && d.params.ConversationSid === channelSid,
    channels: (state) =>
      (state.conversations ?? []).map((conversation) => ({
        sid: conversation.sid,
        closed: conversation.state === 'closed',
        messages: (conversation.messages ?? [])
          .map((m) => ({ sid: m.sid, index: m.index, author: m.author, body: m.body, attributes: parseJson(m.attributes), media: m.media?.[0] ?? null }))
          .sort(byIndex),
      })),
    channelOfTask: (attributes) => attributes?.conversationSid,
  },
};

/**
 * Flex as one backend of the bridge sees it, and its agents.
 *
 * @param {import('./harness.mjs').Emulator} emulator
 * @param {string} backend `chat` or `conversations`
 */
export function flexOf(emulator, backend) {
  const profile = BACKEND_PROFILES[backend];
  if (!profile) throw new Error(`unknown backend ${backend}`);
  const api = control(emulator);
  const agentIdentities = new Set(emulator.bootstrap.agents.map((a) => a.identity));

  /** @returns {Promise<{channels: FlexChannel[], tasks: FlexTask[], state: any}>} */
  async function view() {
    const state = await api.state();
    const tasks = (state.tasks ?? []).map((task) => {
      const attributes = parseJson(task.attributes);
      return {
        sid: task.sid,
        channelSid: profile.channelOfTask(attributes),
        assignmentStatus: task.assignment_status,
        attributes,
      };
    });
    return { channels: profile.channels(state), tasks, state };
  }

  const flex = {
    profile,
    api,
    view,
    channels: async () => (await view()).channels,
    tasks: async () => (await view()).tasks,
    /** @returns {Promise<FlexChannel>} */
    async channel(sid) {
      const found = (await flex.channels()).find((c) => c.sid === sid);
      if (!found) throw new Error(`Flex has no channel ${sid}`);
      return found;
    },
    /** Is this identity one of the emulator's agents? */
    isAgent: (identity) => agentIdentities.has(identity),
    /** The bodies of a channel's messages not written by an agent, in order. */
    async customerBodies(channelSid) {
      return (await flex.channel(channelSid)).messages.filter((m) => !flex.isAgent(m.author)).map((m) => m.body);
    },
    /**
     * Waits until a customer message with this body is in Flex and returns
     * the channel (Chat channel or Conversation) that holds it.
     * @returns {Promise<FlexChannel>}
     */
    async channelWith(body, { timeout } = {}) {
      return waitFor(
        async () => (await flex.channels()).find((c) => c.messages.some((m) => m.body === body && !flex.isAgent(m.author))),
        { timeout, message: `no Flex channel holds a customer message ${JSON.stringify(body)}` },
      );
    },
    /** The emulator's webhook log entries of agent/customer messages with this body (every copy and attempt). */
    async messageWebhooks(body) {
      return (await api.webhooks()).filter((d) => d.event_type === profile.agentMessageEvent && d.params?.Body === body);
    },
    /** Waits until Flex has posted the message with this body to the bridge `copies` times, each answered 2xx. */
    async messageWebhookDelivered(body, { copies = 1, timeout } = {}) {
      return waitFor(
        async () => {
          const delivered = (await flex.messageWebhooks(body)).filter((d) => d.outcome === 'delivered');
          return delivered.length >= copies && delivered;
        },
        { timeout, message: `Flex did not deliver ${copies} webhook(s) for ${JSON.stringify(body)}` },
      );
    },
    /** Waits until every one of these customer messages is in Flex (in any channel). */
    async customerMessagesArrived(bodies, { timeout } = {}) {
      return waitFor(
        async () => {
          const held = new Set((await flex.channels()).flatMap((c) => c.messages.map((m) => m.body)));
          return bodies.every((body) => held.has(body));
        },
        { timeout, message: `not all of ${JSON.stringify(bodies)} reached Flex` },
      );
    },
    /**
     * Waits for a pending reservation of the task of this channel, accepts it
     * as whichever agent it was offered to, and returns that agent.
     * @returns {Promise<Agent>}
     */
    async acceptChat(channelSid, { timeout } = {}) {
      const { agent, work } = await waitFor(
        async () => {
          for (const { sid } of await api.agents()) {
            const mine = await api.agent(sid);
            const work = mine.work.find((w) => w.channel_sid === channelSid && w.reservation.reservation_status === 'pending');
            if (work) return { agent: mine.agent, work };
          }
          return undefined;
        },
        { timeout, message: `no agent was offered the task of ${channelSid}` },
      );
      await api.accept(agent.sid, work.reservation.sid);
      return agentOn(agent, work.task.sid, channelSid);
    },
  };

  /**
   * @typedef {object} Agent an agent working one task
   * @property {string} name
   * @property {string} identity
   * @property {string} sid WK…
   * @property {string} taskSid
   * @property {string} channelSid
   * @property {(body: string) => Promise<any>} say an SDK message (webhooks with Source=SDK)
   * @property {() => Promise<any>} end ends the chat
   */
  function agentOn(agent, taskSid, channelSid) {
    return {
      name: agent.name,
      identity: agent.identity,
      sid: agent.sid,
      taskSid,
      channelSid,
      say: (body) => api.send(agent.sid, taskSid, body),
      end: () => api.end(agent.sid, taskSid),
    };
  }

  return flex;
}
