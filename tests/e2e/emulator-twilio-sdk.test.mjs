// The official `twilio` package (twilio-node 5), pointed at the emulator by
// base URL only, runs the blog post's middleware flow; every webhook the
// emulator sends must validate with the package's own `validateRequest`.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { control, emulatorFor, requestJson, twilioClientFor, waitFor, webhookReceiverFor } from './lib/harness.mjs';
import {
  addChannelWebhooks,
  createCustomFlexFlow,
  createCustomerChannel,
  openCustomerChat,
  parseJson,
  sendCustomerMessage,
  tasksForChannel,
} from './lib/middleware.mjs';

const sidOf = (prefix) => new RegExp(`^${prefix}[0-9a-fA-F]{32}$`);

test('the blog post flow runs unchanged against the emulator with only the base URL changed', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1, seed: 101 });
  const receiver = await webhookReceiverFor(t);
  const client = twilioClientFor(emulator);
  const { bootstrap } = emulator;
  const { accountSid, authToken } = emulator.credentials;

  // Provisioning: the custom-channel Flex Flow.
  const flow = await createCustomFlexFlow(client, bootstrap);
  assert.match(flow.sid, sidOf('FO'));
  assert.equal(flow.accountSid, accountSid);
  assert.equal(flow.friendlyName, 'Custom Webchat Flex Flow');
  assert.equal(flow.channelType, 'custom');
  assert.equal(flow.integrationType, 'studio');
  assert.equal(flow.integration.flow_sid, bootstrap.studio_flow_sid);
  assert.equal(flow.chatServiceSid, bootstrap.chat_service_sid);
  assert.equal(flow.contactIdentity, 'custom');
  assert.equal(flow.enabled, true);
  assert.equal(flow.url, `${emulator.url}/v1/FlexFlows/${flow.sid}`);
  const fetchedFlow = await client.flexApi.v1.flexFlow(flow.sid).fetch();
  assert.equal(fetchedFlow.sid, flow.sid);
  assert.equal(fetchedFlow.integration.flow_sid, bootstrap.studio_flow_sid);

  // createNewChannel(): the Flex channel, a channel of the Flex Chat Service.
  const identity = 'customer-ada';
  const channel = await createCustomerChannel(client, { flexFlowSid: flow.sid, identity, name: 'Ada Lovelace' });
  assert.match(channel.sid, sidOf('CH'));
  assert.match(channel.userSid, sidOf('US'));
  assert.equal(channel.flexFlowSid, flow.sid);
  assert.equal(channel.accountSid, accountSid);
  assert.equal(channel.taskSid, null, 'a studio flow makes the task later, not with the channel');
  const chatChannel = await client.chat.v2.services(bootstrap.chat_service_sid).channels(channel.sid).fetch();
  assert.equal(chatChannel.serviceSid, bootstrap.chat_service_sid);
  assert.equal(chatChannel.friendlyName, 'Chat with Ada Lovelace');
  const channelAttributes = parseJson(chatChannel.attributes);
  assert.equal(channelAttributes?.from, 'Ada Lovelace');
  assert.equal(channelAttributes?.status, 'ACTIVE');
  const members = await client.chat.v2.services(bootstrap.chat_service_sid).channels(channel.sid).members.list();
  assert.deepEqual(
    members.map((member) => member.identity),
    [identity],
  );
  const user = await client.chat.v2.services(bootstrap.chat_service_sid).users(channel.userSid).fetch();
  assert.equal(user.identity, identity);
  assert.equal(user.friendlyName, 'Ada Lovelace');

  // createNewChannel(): the two channel webhooks.
  const { onMessageSent, onChannelUpdated } = await addChannelWebhooks(client, {
    chatServiceSid: bootstrap.chat_service_sid,
    channelSid: channel.sid,
    url: receiver.url,
  });
  for (const [webhook, filter] of [
    [onMessageSent, 'onMessageSent'],
    [onChannelUpdated, 'onChannelUpdated'],
  ]) {
    assert.match(webhook.sid, sidOf('WH'));
    assert.equal(webhook.type, 'webhook');
    assert.equal(webhook.channelSid, channel.sid);
    assert.equal(webhook.serviceSid, bootstrap.chat_service_sid);
    assert.equal(webhook.configuration.url, receiver.url);
    assert.equal(webhook.configuration.method, 'POST');
    assert.deepEqual(webhook.configuration.filters, [filter]);
  }
  const listedWebhooks = await client.chat.v2
    .services(bootstrap.chat_service_sid)
    .channels(channel.sid)
    .webhooks.list();
  // Ours, plus the studio webhook Flex put on the channel for the flow's integration.
  assert.deepEqual(
    listedWebhooks.filter((w) => w.type === 'webhook').map((w) => w.sid).sort(),
    [onMessageSent.sid, onChannelUpdated.sid].sort(),
  );
  assert.deepEqual(
    listedWebhooks.filter((w) => w.type === 'studio').map((w) => w.configuration.flow_sid),
    [bootstrap.studio_flow_sid],
  );

  // sendChatMessage(): a webhook-enabled REST message.
  const body = 'Hi! Where is my order <#1234>?';
  const message = await sendCustomerMessage(client, {
    chatServiceSid: bootstrap.chat_service_sid,
    channelSid: channel.sid,
    identity,
    body,
  });
  assert.match(message.sid, sidOf('IM'));
  assert.equal(message.from, identity);
  assert.equal(message.body, body);
  assert.equal(message.channelSid, channel.sid);
  assert.equal(message.index, 0);
  const listed = await client.chat.v2.services(bootstrap.chat_service_sid).channels(channel.sid).messages.list();
  assert.deepEqual(
    listed.map((m) => [m.sid, m.from, m.body]),
    [[message.sid, identity, body]],
  );

  // Twilio calls the middleware back: onMessageSent, Source=API (our own post).
  const hook = await receiver.waitFor((r) => r.params.EventType === 'onMessageSent' && r.params.MessageSid === message.sid);
  assert.equal(hook.method, 'POST');
  assert.match(hook.headers['content-type'], /^application\/x-www-form-urlencoded/);
  assert.equal(hook.params.Source, 'API');
  assert.equal(hook.params.Body, body);
  assert.equal(hook.params.From, identity);
  assert.equal(hook.params.ChannelSid, channel.sid);
  assert.equal(hook.params.InstanceSid, bootstrap.chat_service_sid);
  assert.equal(hook.params.AccountSid, accountSid);
  assert.equal(hook.params.WebhookSid, onMessageSent.sid);
  assert.equal(hook.params.Index, '0');
  assert.equal(hook.params.RetryCount, '0');

  // Flex made a task for the channel, through the Studio flow, and reserved it.
  const task = await waitFor(async () => (await tasksForChannel(client, bootstrap.workspace_sid, channel.sid))[0], {
    message: `no TaskRouter task names channel ${channel.sid}`,
  });
  assert.match(task.sid, sidOf('WT'));
  assert.equal(task.workspaceSid, bootstrap.workspace_sid);
  assert.equal(task.workflowSid, bootstrap.workflow_sid);
  assert.equal(task.taskChannelUniqueName, 'chat');
  const taskAttributes = parseJson(task.attributes);
  assert.equal(taskAttributes.channelSid, channel.sid);
  assert.equal(taskAttributes.channelType, 'custom');
  assert.equal(taskAttributes.name, 'Ada Lovelace');
  const reserved = await waitFor(async () => {
    const current = await client.taskrouter.v1.workspaces(bootstrap.workspace_sid).tasks(task.sid).fetch();
    return current.assignmentStatus === 'reserved' && current;
  });
  assert.equal(reserved.sid, task.sid);
  const reservations = await client.taskrouter.v1
    .workspaces(bootstrap.workspace_sid)
    .tasks(task.sid)
    .reservations.list();
  assert.equal(reservations.length, 1);
  assert.match(reservations[0].sid, sidOf('WR'));
  assert.equal(reservations[0].reservationStatus, 'pending');
  assert.equal(reservations[0].workerName, 'alice');
  assert.equal(reservations[0].taskSid, task.sid);

  assert.deepEqual(receiver.invalid(authToken), [], 'every webhook validates with twilio.validateRequest');
  assert.equal(receiver.invalid('not-the-auth-token').length, receiver.requests.length, 'signatures depend on the token');
});

test('agent replies and the chat end reach the middleware as signed SDK webhooks', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1, seed: 102 });
  const receiver = await webhookReceiverFor(t);
  const client = twilioClientFor(emulator);
  const agents = control(emulator);
  const { bootstrap } = emulator;
  const { authToken } = emulator.credentials;

  const { channel } = await openCustomerChat(client, bootstrap, {
    identity: 'customer-grace',
    name: 'Grace Hopper',
    body: 'Hello?',
    webhookUrl: receiver.url,
  });
  const [task] = await waitFor(() => tasksForChannel(client, bootstrap.workspace_sid, channel.sid).then((ts) => ts.length && ts));
  const [reservation] = await waitFor(() =>
    client.taskrouter.v1
      .workspaces(bootstrap.workspace_sid)
      .tasks(task.sid)
      .reservations.list()
      .then((rs) => rs.length && rs),
  );

  await agents.accept('alice', reservation.sid);
  const assigned = await client.taskrouter.v1.workspaces(bootstrap.workspace_sid).tasks(task.sid).fetch();
  assert.equal(assigned.assignmentStatus, 'assigned');
  const members = await client.chat.v2.services(bootstrap.chat_service_sid).channels(channel.sid).members.list();
  assert.deepEqual(members.map((m) => m.identity).sort(), ['alice', 'customer-grace']);

  await agents.send('alice', task.sid, 'Hi Grace, how can I help?');
  const reply = await receiver.waitFor((r) => r.params.EventType === 'onMessageSent' && r.params.Source === 'SDK');
  assert.equal(reply.params.Body, 'Hi Grace, how can I help?');
  assert.equal(reply.params.From, 'alice');
  assert.equal(reply.params.ClientIdentity, 'alice');
  assert.equal(reply.params.ChannelSid, channel.sid);

  await agents.end('alice', task.sid);
  const ended = await receiver.waitFor((r) => r.params.EventType === 'onChannelUpdated');
  assert.equal(ended.params.ChannelSid, channel.sid);
  assert.equal(parseJson(ended.params.Attributes)?.status, 'INACTIVE');
  const completed = await waitFor(async () => {
    const current = await client.taskrouter.v1.workspaces(bootstrap.workspace_sid).tasks(task.sid).fetch();
    return current.assignmentStatus === 'completed' && current;
  });
  assert.equal(completed.sid, task.sid);

  // The customer's own REST post came back with Source=API; nothing else did.
  const sources = receiver.requests
    .filter((r) => r.params.EventType === 'onMessageSent')
    .map((r) => [r.params.Source, r.params.Body]);
  assert.deepEqual(sources, [
    ['API', 'Hello?'],
    ['SDK', 'Hi Grace, how can I help?'],
  ]);
  assert.deepEqual(receiver.invalid(authToken), [], 'every webhook validates with twilio.validateRequest');
});

test('a second channel for the same target is the same channel and starts no second task', async (t) => {
  const emulator = await emulatorFor(t, { agents: 2, seed: 103 });
  const receiver = await webhookReceiverFor(t);
  const client = twilioClientFor(emulator);
  const { bootstrap } = emulator;
  const flow = await createCustomFlexFlow(client, bootstrap);
  const chat = { chatServiceSid: bootstrap.chat_service_sid };

  const first = await createCustomerChannel(client, { flexFlowSid: flow.sid, identity: 'cust-1', name: 'One' });
  await addChannelWebhooks(client, { ...chat, channelSid: first.sid, url: receiver.url });
  await sendCustomerMessage(client, { ...chat, channelSid: first.sid, identity: 'cust-1', body: 'first' });
  await waitFor(() => tasksForChannel(client, bootstrap.workspace_sid, first.sid).then((ts) => ts.length === 1));

  const again = await createCustomerChannel(client, { flexFlowSid: flow.sid, identity: 'cust-1', name: 'One' });
  assert.equal(again.sid, first.sid, 'same target, same active channel');
  const second = await sendCustomerMessage(client, { ...chat, channelSid: again.sid, identity: 'cust-1', body: 'second' });
  assert.equal(second.index, 1);

  const other = await createCustomerChannel(client, { flexFlowSid: flow.sid, identity: 'cust-2', name: 'Two' });
  assert.notEqual(other.sid, first.sid, 'another target, another channel');
  await sendCustomerMessage(client, { ...chat, channelSid: other.sid, identity: 'cust-2', body: 'hello' });

  // Once the second message's webhook and the other channel's task are there,
  // the emulator has handled the second message: it must not have made a task.
  await receiver.waitFor((r) => r.params.EventType === 'onMessageSent' && r.params.Body === 'second');
  await waitFor(() => tasksForChannel(client, bootstrap.workspace_sid, other.sid).then((ts) => ts.length === 1));
  const tasks = await tasksForChannel(client, bootstrap.workspace_sid, first.sid);
  assert.equal(tasks.length, 1, 'a message on an existing channel starts no new task');
});

test('list calls page through next_page_url, which points back at the emulator', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1, seed: 104 });
  const client = twilioClientFor(emulator);
  const { bootstrap } = emulator;
  const flow = await createCustomFlexFlow(client, bootstrap);
  const channel = await createCustomerChannel(client, { flexFlowSid: flow.sid, identity: 'pager', name: 'Pager' });
  const messages = client.chat.v2.services(bootstrap.chat_service_sid).channels(channel.sid).messages;
  const bodies = ['one', 'two', 'three', 'four', 'five'];
  for (const body of bodies) {
    await messages.create({ from: 'pager', body });
  }

  const firstPage = await messages.page({ pageSize: 2 });
  assert.deepEqual(
    firstPage.instances.map((m) => m.body),
    ['one', 'two'],
  );
  assert.ok(
    firstPage.nextPageUrl.startsWith(`${emulator.url}/v2/Services/${bootstrap.chat_service_sid}/Channels/${channel.sid}/Messages?`),
    `next_page_url points at the emulator: ${firstPage.nextPageUrl}`,
  );
  const secondPage = await firstPage.nextPage();
  assert.deepEqual(
    secondPage.instances.map((m) => m.body),
    ['three', 'four'],
  );
  const lastPage = await secondPage.nextPage();
  assert.deepEqual(
    lastPage.instances.map((m) => m.body),
    ['five'],
  );
  assert.equal(lastPage.nextPageUrl, undefined);

  // list() follows the pages by itself.
  const all = await messages.list({ pageSize: 2 });
  assert.deepEqual(
    all.map((m) => m.body),
    bodies,
  );
  assert.deepEqual(
    all.map((m) => m.index),
    [0, 1, 2, 3, 4],
  );

  // So does a Flex list (another product, another envelope key).
  const flows = [flow];
  for (const name of ['Second flow', 'Third flow']) {
    flows.push(
      await client.flexApi.v1.flexFlow.create({
        friendlyName: name,
        chatServiceSid: bootstrap.chat_service_sid,
        channelType: 'custom',
        integrationType: 'studio',
        'integration.flowSid': bootstrap.studio_flow_sid,
        enabled: false,
      }),
    );
  }
  const paged = (await client.flexApi.v1.flexFlow.list({ pageSize: 2 })).map((f) => f.sid);
  const unpaged = (await client.flexApi.v1.flexFlow.list({ pageSize: 50 })).map((f) => f.sid);
  assert.deepEqual(paged, unpaged, 'pages of 2 add up to the one page of 50');
  for (const { sid } of flows) assert.ok(paged.includes(sid), `${sid} is listed`);
});

test('the emulator answers bad credentials, unknown SIDs and missing parameters like Twilio', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1, seed: 105 });
  const { bootstrap, credentials } = emulator;

  const intruder = twilioClientFor({ url: emulator.url, credentials: { ...credentials, authToken: 'not-the-auth-token' } });
  await assert.rejects(intruder.flexApi.v1.flexFlow.list(), (err) => {
    assert.equal(err.status, 401);
    assert.equal(err.code, 20003);
    return true;
  });

  const client = twilioClientFor(emulator);
  await assert.rejects(client.flexApi.v1.flexFlow(`FO${'0'.repeat(32)}`).fetch(), (err) => {
    assert.equal(err.status, 404);
    assert.equal(err.code, 20404);
    assert.match(err.moreInfo, /20404/);
    return true;
  });

  // twilio-node checks required parameters itself, so this one goes by hand.
  const basic = Buffer.from(`${credentials.accountSid}:${credentials.authToken}`).toString('base64');
  const response = await fetch(`${emulator.url}/v1/FlexFlows`, {
    method: 'POST',
    headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ChatServiceSid: bootstrap.chat_service_sid, ChannelType: 'custom' }),
  });
  assert.equal(response.status, 400);
  const error = await response.json();
  assert.equal(error.status, 400);
  assert.equal(typeof error.code, 'number');
  assert.match(error.message, /FriendlyName/);

  // An API key SID and secret work as the Basic pair, as on Twilio.
  const state = await requestJson('GET', `${emulator.url}/_emulator/state`);
  assert.match(state.account.api_key_sid, sidOf('SK'));
  const withKey = twilioClientFor(emulator, { apiKey: true });
  const created = await createCustomFlexFlow(withKey, bootstrap, { friendlyName: 'Made with an API key' });
  assert.equal(created.accountSid, credentials.accountSid);
  const fetched = await client.flexApi.v1.flexFlow(created.sid).fetch();
  assert.equal(fetched.friendlyName, 'Made with an API key');
});
