// The middleware of Twilio's blog post "Add a Custom Chat Channel to Twilio
// Flex" (docs/twilio-reference.md §9.1), step by step, with the official
// `twilio` package. Tests call these and assert on what Twilio (here: the
// emulator) answers at each step.
// Parameter names are twilio-node's for the spec's (docs/twilio-reference.md).

/** Provisioning: a custom-channel Flex Flow that hands new chats to the Studio flow. */
export function createCustomFlexFlow(client, bootstrap, { friendlyName = 'Custom Webchat Flex Flow' } = {}) {
  return client.flexApi.v1.flexFlow.create({
    friendlyName,
    channelType: 'custom',
    integrationType: 'studio',
    'integration.flowSid': bootstrap.studio_flow_sid,
    chatServiceSid: bootstrap.chat_service_sid,
    contactIdentity: 'custom',
    enabled: true,
  });
}

/** `createNewChannel()`, part 1: a Flex chat channel for one customer. */
export function createCustomerChannel(client, { flexFlowSid, identity, name, target = identity }) {
  return client.flexApi.v1.channel.create({
    flexFlowSid,
    identity,
    chatUserFriendlyName: name,
    chatFriendlyName: `Chat with ${name}`,
    target,
  });
}

/** `createNewChannel()`, part 2: the two channel webhooks (agent messages, chat end). */
export async function addChannelWebhooks(client, { chatServiceSid, channelSid, url }) {
  const webhooks = client.chat.v2.services(chatServiceSid).channels(channelSid).webhooks;
  const onMessageSent = await webhooks.create({
    type: 'webhook',
    'configuration.method': 'POST',
    'configuration.url': url,
    'configuration.filters': ['onMessageSent'],
  });
  const onChannelUpdated = await webhooks.create({
    type: 'webhook',
    'configuration.method': 'POST',
    'configuration.url': url,
    'configuration.filters': ['onChannelUpdated'],
  });
  return { onMessageSent, onChannelUpdated };
}

/**
 * `sendChatMessage()`: a customer message posted through the REST API with
 * `X-Twilio-Webhook-Enabled: true`, which is what makes Flex create the task.
 */
export function sendCustomerMessage(client, { chatServiceSid, channelSid, identity, body }) {
  return client.chat.v2.services(chatServiceSid).channels(channelSid).messages.create({
    from: identity,
    body,
    xTwilioWebhookEnabled: 'true',
  });
}

/** The TaskRouter tasks whose attributes name this chat channel. */
export async function tasksForChannel(client, workspaceSid, channelSid) {
  const tasks = await client.taskrouter.v1.workspaces(workspaceSid).tasks.list();
  return tasks.filter((task) => parseJson(task.attributes)?.channelSid === channelSid);
}

/** Everything up to a reserved task: flow, channel, webhooks, first message. */
export async function openCustomerChat(client, bootstrap, { identity, name, body, webhookUrl, flexFlowSid }) {
  const flowSid = flexFlowSid ?? (await createCustomFlexFlow(client, bootstrap)).sid;
  const channel = await createCustomerChannel(client, { flexFlowSid: flowSid, identity, name });
  const webhooks = await addChannelWebhooks(client, {
    chatServiceSid: bootstrap.chat_service_sid,
    channelSid: channel.sid,
    url: webhookUrl,
  });
  const message = await sendCustomerMessage(client, {
    chatServiceSid: bootstrap.chat_service_sid,
    channelSid: channel.sid,
    identity,
    body,
  });
  return { flexFlowSid: flowSid, channel, webhooks, message };
}

/** A JSON attribute string, parsed (null when absent or not JSON). */
export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
