// The official `twilio` package (twilio-node 5), pointed at the emulator by
// base URL only, runs the Flex Conversations flow of
// docs/twilio-reference.md §9.2: a
// conversation, its customer participant and scoped webhook, a
// webhook-enabled message, the interaction that routes it to an agent, the
// agent's reply and the end of the chat. Every webhook the receiver gets
// must validate with the package's own `validateRequest`. The last test
// shows the agent console (headless Chromium) working a conversations task
// with no change from the Chat backend.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { control, emulatorFor, launchChromium, twilioClientFor, waitFor, webhookReceiverFor } from './lib/harness.mjs';
import { parseJson } from './lib/middleware.mjs';

const sidOf = (prefix) => new RegExp(`^${prefix}[0-9a-fA-F]{32}$`);

/** `Channel` of an inbound interaction for a conversation (docs/twilio-reference.md §2). */
const chatChannel = (conversationSid) => ({
  type: 'chat',
  initiated_by: 'customer',
  properties: { media_channel_sid: conversationSid },
});

test('the Flex Conversations flow runs unchanged against the emulator with only the base URL changed', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1, seed: 201 });
  const receiver = await webhookReceiverFor(t);
  const client = twilioClientFor(emulator);
  const agents = control(emulator);
  const { bootstrap } = emulator;
  const { accountSid, authToken } = emulator.credentials;
  const conversations = client.conversations.v1.conversations;

  // 1. The conversation, its customer and the bridge's scoped webhook.
  const conversation = await conversations.create({
    friendlyName: 'Chat with Ada',
    uniqueName: 'web-customer-ada-1',
    attributes: JSON.stringify({ customerId: 'c-ada' }),
    'timers.closed': 'P1D',
  });
  assert.match(conversation.sid, sidOf('CH'));
  assert.equal(conversation.accountSid, accountSid);
  assert.equal(conversation.chatServiceSid, bootstrap.chat_service_sid);
  assert.equal(conversation.state, 'active');
  assert.equal(conversation.friendlyName, 'Chat with Ada');
  assert.equal(conversation.uniqueName, 'web-customer-ada-1');
  assert.deepEqual(parseJson(conversation.attributes), { customerId: 'c-ada' });
  assert.equal(typeof conversation.timers.date_closed, 'string');
  assert.equal(conversation.url, `${emulator.url}/v1/Conversations/${conversation.sid}`);
  assert.equal(conversation.links.messages, `${conversation.url}/Messages`);
  const byName = await conversations('web-customer-ada-1').fetch();
  assert.equal(byName.sid, conversation.sid);
  const viaService = await client.conversations.v1
    .services(bootstrap.chat_service_sid)
    .conversations(conversation.sid)
    .fetch();
  assert.equal(viaService.sid, conversation.sid, 'the Flex Chat Service is the default service');

  const identity = 'customer-ada';
  const participant = await conversations(conversation.sid).participants.create({ identity });
  assert.match(participant.sid, sidOf('MB'));
  assert.equal(participant.identity, identity);
  assert.equal(participant.conversationSid, conversation.sid);
  assert.equal(participant.messagingBinding, null);

  const webhook = await conversations(conversation.sid).webhooks.create({
    target: 'webhook',
    'configuration.url': receiver.url,
    'configuration.method': 'post',
    'configuration.filters': ['onMessageAdded', 'onConversationStateUpdated'],
  });
  assert.match(webhook.sid, sidOf('WH'));
  assert.equal(webhook.target, 'webhook');
  assert.equal(webhook.conversationSid, conversation.sid);
  assert.deepEqual(webhook.configuration, {
    url: receiver.url,
    method: 'post',
    filters: ['onMessageAdded', 'onConversationStateUpdated'],
  });
  const listedWebhooks = await conversations(conversation.sid).webhooks.list();
  assert.deepEqual(
    listedWebhooks.map((w) => w.sid),
    [webhook.sid],
  );

  // 2. The customer's message, webhook-enabled, comes back as onMessageAdded (Source=API).
  const body = 'Hi! Where is my order <#1234>?';
  const message = await conversations(conversation.sid).messages.create({
    author: identity,
    body,
    attributes: JSON.stringify({ clientMessageId: 'm-1' }),
    xTwilioWebhookEnabled: 'true',
  });
  assert.match(message.sid, sidOf('IM'));
  assert.equal(message.index, 0);
  assert.equal(message.author, identity);
  assert.equal(message.body, body);
  assert.equal(message.participantSid, participant.sid);
  assert.equal(message.conversationSid, conversation.sid);
  assert.deepEqual(parseJson(message.attributes), { clientMessageId: 'm-1' });
  const hook = await receiver.waitFor((r) => r.params.EventType === 'onMessageAdded' && r.params.MessageSid === message.sid);
  assert.equal(hook.method, 'POST');
  assert.match(hook.headers['content-type'], /^application\/x-www-form-urlencoded/);
  assert.equal(hook.params.Source, 'API');
  assert.equal(hook.params.Author, identity);
  assert.equal(hook.params.Body, body);
  assert.equal(hook.params.ConversationSid, conversation.sid);
  assert.equal(hook.params.ChatServiceSid, bootstrap.chat_service_sid);
  assert.equal(hook.params.AccountSid, accountSid);
  assert.equal(hook.params.WebhookSid, webhook.sid);
  assert.equal(hook.params.ParticipantSid, participant.sid);
  assert.equal(hook.params.Index, '0');
  assert.equal(hook.params.RetryCount, '0');

  // 3. The interaction routes the conversation to Flex: a task, reserved to alice.
  const interaction = await client.flexApi.v1.interaction.create({
    channel: chatChannel(conversation.sid),
    routing: {
      properties: {
        workspace_sid: bootstrap.workspace_sid,
        workflow_sid: bootstrap.workflow_sid,
        task_channel_unique_name: 'chat',
        attributes: { from: 'Ada Lovelace', customerId: 'c-ada' },
      },
    },
  });
  assert.match(interaction.sid, sidOf('KD'));
  assert.match(interaction.channel.sid, sidOf('UO'));
  assert.equal(interaction.channel.type, 'chat');
  assert.equal(interaction.url, `${emulator.url}/v1/Interactions/${interaction.sid}`);
  const taskSid = interaction.routing.properties.sid;
  assert.match(taskSid, sidOf('WT'));
  const [interactionChannel] = await client.flexApi.v1.interaction(interaction.sid).channels.list();
  assert.equal(interactionChannel.sid, interaction.channel.sid);
  assert.equal(interactionChannel.status, 'active');
  assert.equal(interactionChannel.type, 'chat');

  const task = await waitFor(async () => {
    const current = await client.taskrouter.v1.workspaces(bootstrap.workspace_sid).tasks(taskSid).fetch();
    return current.assignmentStatus === 'reserved' && current;
  });
  assert.equal(task.workflowSid, bootstrap.workflow_sid);
  assert.equal(task.taskChannelUniqueName, 'chat');
  assert.deepEqual(parseJson(task.attributes), {
    from: 'Ada Lovelace',
    customerId: 'c-ada',
    conversationSid: conversation.sid,
    flexInteractionSid: interaction.sid,
    flexInteractionChannelSid: interaction.channel.sid,
    channelType: 'chat',
    name: identity,
  });

  // 4. Alice accepts (she joins the conversation), replies and ends the chat.
  const view = await agents.agent('alice');
  assert.equal(view.work[0].backend, 'conversations');
  assert.equal(view.work[0].channel_sid, conversation.sid);
  await agents.accept('alice', view.work[0].reservation.sid);
  const joined = await conversations(conversation.sid).participants.list();
  assert.deepEqual(joined.map((p) => p.identity), [identity, 'alice']);

  await agents.send('alice', taskSid, 'Hi Ada, let me check.');
  const reply = await receiver.waitFor((r) => r.params.EventType === 'onMessageAdded' && r.params.Source === 'SDK');
  assert.equal(reply.params.Author, 'alice');
  assert.equal(reply.params.ClientIdentity, 'alice');
  assert.equal(reply.params.Body, 'Hi Ada, let me check.');

  const listed = await conversations(conversation.sid).messages.list();
  assert.deepEqual(
    listed.map((m) => [m.index, m.author, m.body]),
    [
      [0, identity, body],
      [1, 'alice', 'Hi Ada, let me check.'],
    ],
  );

  await agents.end('alice', taskSid);
  const closed = await receiver.waitFor((r) => r.params.EventType === 'onConversationStateUpdated');
  assert.equal(closed.params.StateFrom, 'active');
  assert.equal(closed.params.StateTo, 'closed');
  assert.equal(closed.params.Source, 'SDK');
  assert.equal((await conversations(conversation.sid).fetch()).state, 'closed');
  const closedChannel = await client.flexApi.v1.interaction(interaction.sid).channels(interaction.channel.sid).fetch();
  assert.equal(closedChannel.status, 'closed');
  const completed = await waitFor(async () => {
    const current = await client.taskrouter.v1.workspaces(bootstrap.workspace_sid).tasks(taskSid).fetch();
    return current.assignmentStatus === 'completed' && current;
  });
  assert.equal(completed.sid, taskSid);

  assert.ok(receiver.requests.length >= 3);
  assert.deepEqual(receiver.invalid(authToken), [], 'every webhook validates with twilio.validateRequest');
  assert.equal(receiver.invalid('not-the-auth-token').length, receiver.requests.length, 'signatures depend on the token');
});

test('closing the interaction channel with the library closes the conversation; a studio webhook routes on the first message only', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1, seed: 202 });
  const receiver = await webhookReceiverFor(t, { path: '/webhooks/flex?tenant=t1' });
  const client = twilioClientFor(emulator);
  const { bootstrap } = emulator;
  const { authToken } = emulator.credentials;
  const conversations = client.conversations.v1.conversations;

  // A studio-routed conversation: Send to Flex on the first webhook-enabled message.
  const conversation = await conversations.create({ friendlyName: 'Chat with Grace' });
  await conversations(conversation.sid).participants.create({ identity: 'customer-grace' });
  await conversations(conversation.sid).webhooks.create({
    target: 'webhook',
    'configuration.url': receiver.url,
    'configuration.method': 'get',
    'configuration.filters': ['onConversationStateUpdated'],
  });
  const studio = await conversations(conversation.sid).webhooks.create({
    target: 'studio',
    'configuration.flowSid': bootstrap.studio_flow_sid,
  });
  assert.equal(studio.target, 'studio');
  assert.equal(studio.configuration.flow_sid, bootstrap.studio_flow_sid);
  for (const body of ['Hello?', 'Anyone there?']) {
    await conversations(conversation.sid).messages.create({ author: 'customer-grace', body, xTwilioWebhookEnabled: 'true' });
  }
  const tasksOf = async () =>
    (await client.taskrouter.v1.workspaces(bootstrap.workspace_sid).tasks.list()).filter(
      (task) => parseJson(task.attributes)?.conversationSid === conversation.sid,
    );
  const [task, ...others] = await waitFor(async () => {
    const tasks = await tasksOf();
    return tasks.length > 0 && tasks;
  });
  assert.deepEqual(others, [], 'one task for the first message only');
  const attributes = parseJson(task.attributes);
  assert.equal(attributes.name, 'customer-grace');
  assert.equal(attributes.channelType, 'chat');
  assert.match(attributes.flexInteractionSid, sidOf('KD'));

  // The Interactions API closes the channel: the conversation closes, the task is done.
  const [reservation] = await waitFor(() =>
    client.taskrouter.v1
      .workspaces(bootstrap.workspace_sid)
      .tasks(task.sid)
      .reservations.list()
      .then((rs) => rs.length && rs),
  );
  await control(emulator).accept('alice', reservation.sid);
  const updated = await client.flexApi.v1
    .interaction(attributes.flexInteractionSid)
    .channels(attributes.flexInteractionChannelSid)
    .update({ status: 'closed', routing: { status: 'closed' } });
  assert.equal(updated.status, 'closed');
  const closed = await receiver.waitFor((r) => r.method === 'GET');
  const query = new URL(closed.url).searchParams;
  assert.equal(query.get('EventType'), 'onConversationStateUpdated');
  assert.equal(query.get('StateTo'), 'closed');
  assert.equal(query.get('Reason'), 'EVENT');
  assert.equal(query.get('tenant'), 't1', 'the configured query string is kept');
  const done = await client.taskrouter.v1.workspaces(bootstrap.workspace_sid).tasks(task.sid).fetch();
  assert.equal(done.assignmentStatus, 'completed', 'Routing {status: closed} completes at once');
  assert.equal((await conversations(conversation.sid).fetch()).state, 'closed');
  await assert.rejects(
    conversations(conversation.sid).messages.create({ author: 'customer-grace', body: 'late' }),
    (err) => err.status === 409 && err.code === 50377,
  );
  assert.deepEqual(receiver.invalid(authToken), [], 'GET webhooks validate over their full URL');
});

test('the agent console works a conversations task as it works a chat one', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1, seed: 203 });
  const receiver = await webhookReceiverFor(t);
  const client = twilioClientFor(emulator);
  const { bootstrap } = emulator;
  const conversations = client.conversations.v1.conversations;
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${emulator.url}/`);
  const [alice] = await control(emulator).agents();
  await page.getByTestId('agent-picker').and(page.locator(':enabled')).waitFor();
  await page.getByTestId('agent-picker').selectOption(alice.sid);

  const conversation = await conversations.create({ friendlyName: 'Chat with Ada' });
  await conversations(conversation.sid).participants.create({ identity: 'customer-ada' });
  await conversations(conversation.sid).webhooks.create({
    target: 'webhook',
    'configuration.url': receiver.url,
    'configuration.filters': ['onMessageAdded', 'onConversationStateUpdated'],
  });
  await conversations(conversation.sid).messages.create({
    author: 'customer-ada',
    body: 'My parcel is late.',
    xTwilioWebhookEnabled: 'true',
  });
  const interaction = await client.flexApi.v1.interaction.create({
    channel: chatChannel(conversation.sid),
    routing: { properties: { workspace_sid: bootstrap.workspace_sid, workflow_sid: bootstrap.workflow_sid, attributes: { name: 'Ada Lovelace' } } },
  });
  const taskSid = interaction.routing.properties.sid;

  const item = page.locator(`[data-testid="reservation-item"][data-task-sid="${taskSid}"]`);
  await item.and(page.locator('[data-status="pending"]')).waitFor();
  assert.equal(await item.locator('.reservation-name').textContent(), 'Ada Lovelace');
  await item.getByTestId('accept-button').click();
  await item.and(page.locator('[data-status="assigned"]')).waitFor();
  const messages = page.getByTestId('message-list');
  await messages.locator('[data-testid="message"][data-role="customer"]', { hasText: 'My parcel is late.' }).waitFor();

  const input = page.getByTestId('composer-input');
  await input.fill('Let me check.');
  await input.press('Enter');
  const sent = await receiver.waitFor((r) => r.params.EventType === 'onMessageAdded' && r.params.Source === 'SDK');
  assert.equal(sent.params.Author, 'alice');
  await messages.locator('[data-testid="message"][data-role="agent"]', { hasText: 'Let me check.' }).waitFor();

  await page.getByTestId('end-button').click();
  const closed = await receiver.waitFor((r) => r.params.EventType === 'onConversationStateUpdated');
  assert.equal(closed.params.StateTo, 'closed');
  await item.and(page.locator('[data-status="completed"]')).waitFor();
  assert.equal(await input.isDisabled(), true, 'no replies to an ended chat');
  assert.deepEqual(errors, [], 'no script errors');
});
