// The agent console, driven in headless Chromium like a person would: the
// customer side is the blog post's middleware (official `twilio` package),
// the agent side is the console page served by the emulator.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { control, emulatorFor, launchChromium, twilioClientFor, waitFor, webhookReceiverFor } from './lib/harness.mjs';
import { openCustomerChat, parseJson, tasksForChannel } from './lib/middleware.mjs';

/** Generous: a loaded 2-core machine runs several suites at once. */
const UI_TIMEOUT = 20_000;

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

/**
 * Opens the console in a fresh browser context (empty localStorage), and
 * records every request the page makes and every error it raises.
 */
async function openConsole(t, emulator, { viewport = { width: 1024, height: 768 } } = {}) {
  const context = await browser.newContext({ viewport });
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT);
  const requests = [];
  const errors = [];
  page.on('request', (request) => requests.push(request.url()));
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${emulator.url}/`);
  await page.getByTestId('agent-picker').and(page.locator(':enabled')).waitFor();
  return { page, requests, errors };
}

async function chooseAgent(page, emulator, name) {
  const agents = await control(emulator).agents();
  const agent = agents.find((a) => a.name === name);
  assert.ok(agent, `agent ${name} exists: ${JSON.stringify(agents)}`);
  await page.getByTestId('agent-picker').selectOption(agent.sid);
  // The agent's own view has loaded once the availability toggle speaks of them.
  await page.locator(`[data-testid="availability-toggle"]:enabled[title^="${name} is "]`).waitFor();
  return agent;
}

const reservationItem = (page, taskSid) => page.locator(`[data-testid="reservation-item"][data-task-sid="${taskSid}"]`);

async function taskFor(client, emulator, channelSid) {
  const [task] = await waitFor(
    () => tasksForChannel(client, emulator.bootstrap.workspace_sid, channelSid).then((tasks) => tasks.length && tasks),
    { timeout: UI_TIMEOUT, message: `no task for ${channelSid}` },
  );
  return task;
}

test('an agent accepts a chat in the console, replies, and ends it; the middleware gets signed webhooks', async (t) => {
  const emulator = await emulatorFor(t, { agents: 2, seed: 201 });
  const receiver = await webhookReceiverFor(t);
  const client = twilioClientFor(emulator);
  const { authToken } = emulator.credentials;
  // bob is away, so the task can only go to alice.
  await control(emulator).setAvailable('bob', false);

  // A phone-sized console, open before anything happens: everything after this arrives live.
  const { page, requests, errors } = await openConsole(t, emulator, { viewport: { width: 360, height: 740 } });
  await page.getByTestId('connection-status').and(page.locator('[data-state="open"]')).waitFor();
  const alice = await chooseAgent(page, emulator, 'alice');
  await page.getByTestId('tasks-empty').getByText('No tasks yet').waitFor();

  const { channel } = await openCustomerChat(client, emulator.bootstrap, {
    identity: 'customer-ada',
    name: 'Ada Lovelace',
    body: 'Hi, my parcel is late.',
    webhookUrl: receiver.url,
  });
  const task = await taskFor(client, emulator, channel.sid);

  // The reservation shows up without a reload.
  const item = reservationItem(page, task.sid);
  await item.and(page.locator('[data-status="pending"]')).waitFor();
  assert.equal(await item.locator('.reservation-name').textContent(), 'Ada Lovelace');

  await item.getByTestId('accept-button').click();
  await item.and(page.locator('[data-status="assigned"]')).waitFor();
  const messages = page.getByTestId('message-list');
  await messages.locator('[data-testid="message"][data-role="customer"]', { hasText: 'Hi, my parcel is late.' }).waitFor();

  const reply = 'Sorry about that! Let me check where it is.';
  const input = page.getByTestId('composer-input');
  await input.fill(reply);
  await input.press('Enter');
  const sent = await receiver.waitFor(
    (r) => r.params.EventType === 'onMessageSent' && r.params.Source === 'SDK',
    { timeout: UI_TIMEOUT },
  );
  assert.equal(sent.params.Body, reply);
  assert.equal(sent.params.From, 'alice');
  assert.equal(sent.params.ClientIdentity, 'alice');
  assert.equal(sent.params.ChannelSid, channel.sid);
  await messages.locator('[data-testid="message"][data-role="agent"]', { hasText: reply }).waitFor();
  assert.equal(await input.inputValue(), '', 'the composer is cleared once the reply is sent');

  await page.getByTestId('end-button').click();
  const ended = await receiver.waitFor((r) => r.params.EventType === 'onChannelUpdated', { timeout: UI_TIMEOUT });
  assert.equal(ended.params.ChannelSid, channel.sid);
  assert.equal(parseJson(ended.params.Attributes)?.status, 'INACTIVE');
  await item.and(page.locator('[data-status="completed"]')).waitFor();
  assert.equal(await page.getByTestId('chat-status').textContent(), 'Completed');
  assert.equal(await input.isDisabled(), true, 'no replies to an ended chat');
  const completed = await client.taskrouter.v1.workspaces(emulator.bootstrap.workspace_sid).tasks(task.sid).fetch();
  assert.equal(completed.assignmentStatus, 'completed');

  // The middleware saw exactly the customer's post (API) and the agent's reply (SDK), all signed.
  assert.deepEqual(
    receiver.requests.filter((r) => r.params.EventType === 'onMessageSent').map((r) => [r.params.Source, r.params.Body]),
    [
      ['API', 'Hi, my parcel is late.'],
      ['SDK', reply],
    ],
  );
  assert.deepEqual(receiver.invalid(authToken), [], 'every webhook validates with twilio.validateRequest');
  assert.equal(receiver.invalid('not-the-auth-token').length, receiver.requests.length, 'signatures depend on the token');

  // Usable at 360 px: nothing overflows sideways. Self-contained: nothing fetched from elsewhere.
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, `the page is ${width} px wide at a 360 px viewport`);
  assert.ok(
    requests.some((url) => url === `${emulator.url}/_emulator/agents/${alice.sid}/tasks/${task.sid}/typing`),
    'typing in the composer pinged the typing endpoint',
  );
  const foreign = requests.filter((url) => !url.startsWith(`${emulator.url}/`) && !url.startsWith('data:'));
  assert.deepEqual(foreign, [], 'the console fetches only from the emulator');
  assert.deepEqual(errors, [], 'no script errors');
});

test('customer names and messages are shown as text, never run as HTML', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1, seed: 202 });
  const receiver = await webhookReceiverFor(t);
  const client = twilioClientFor(emulator);
  const { page, errors } = await openConsole(t, emulator);
  await chooseAgent(page, emulator, 'alice');

  const name = '<img src=x onerror=window.__pwned=1>';
  const body = '<script>window.__pwned=2</script><img src=x onerror="window.__pwned=3"><b>bold?</b>';
  const { channel } = await openCustomerChat(client, emulator.bootstrap, {
    identity: 'customer-mallory',
    name,
    body,
    webhookUrl: receiver.url,
  });
  const task = await taskFor(client, emulator, channel.sid);
  const item = reservationItem(page, task.sid);
  await item.waitFor();
  assert.equal(await item.locator('.reservation-name').textContent(), name);

  await item.getByTestId('accept-button').click();
  const shown = page.getByTestId('message-list').getByTestId('message-body');
  await shown.first().waitFor();
  assert.deepEqual(await shown.allTextContents(), [body]);
  assert.equal(await page.getByTestId('chat-title').textContent(), name);

  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator('img, b').count(), 0, 'no element was made from customer data');
  assert.equal(await page.locator('script').count(), 1, 'only the console script');
  assert.deepEqual(errors, []);
});

test('the console remembers the agent, switches availability, passes on rejected tasks, and shows when it is offline', async (t) => {
  const emulator = await emulatorFor(t, { agents: 2, seed: 203 });
  const receiver = await webhookReceiverFor(t);
  const client = twilioClientFor(emulator);
  const agents = control(emulator);
  const { page } = await openConsole(t, emulator);
  const bob = await chooseAgent(page, emulator, 'bob');

  // The choice survives a reload.
  await page.reload();
  await page.getByTestId('availability-toggle').and(page.locator(':enabled')).waitFor();
  assert.equal(await page.getByTestId('agent-picker').inputValue(), bob.sid);

  // Availability: the toggle changes the worker, and the console follows.
  const toggle = page.getByTestId('availability-toggle');
  assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
  await toggle.click();
  await toggle.and(page.locator('[aria-pressed="false"]')).waitFor();
  await waitFor(async () => (await agents.agents()).find((a) => a.sid === bob.sid)?.available === false);

  // Only alice is available: she gets the task. bob comes back, the console
  // switches to alice, who rejects it: the task goes to bob.
  const { channel } = await openCustomerChat(client, emulator.bootstrap, {
    identity: 'customer-rex',
    name: 'Rex',
    body: 'Anyone there?',
    webhookUrl: receiver.url,
  });
  const task = await taskFor(client, emulator, channel.sid);
  await toggle.click();
  await toggle.and(page.locator('[aria-pressed="true"]')).waitFor();
  await chooseAgent(page, emulator, 'alice');
  const item = reservationItem(page, task.sid);
  await item.and(page.locator('[data-status="pending"]')).waitFor();
  await item.getByTestId('reject-button').click();
  await item.waitFor({ state: 'detached' });
  const bobsWork = await waitFor(async () => {
    const view = await agents.agent('bob');
    return view.work.find((w) => w.task.sid === task.sid && w.reservation.reservation_status === 'pending');
  });
  assert.equal(bobsWork.channel_sid, channel.sid);

  // The event stream going away is said plainly.
  const status = page.getByTestId('connection-status');
  assert.equal(await status.getAttribute('data-state'), 'open');
  await emulator.stop();
  await status.and(page.locator('[data-state="down"]')).waitFor();
  assert.match(await status.textContent(), /down/i);
});

test('with a wrap-up time, an ended chat stays wrapping until the agent completes it', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1, seed: 204, extraArgs: ['--wrapup-seconds', '3600'] });
  const receiver = await webhookReceiverFor(t);
  const client = twilioClientFor(emulator);
  const { page } = await openConsole(t, emulator);
  await chooseAgent(page, emulator, 'alice');

  const { channel } = await openCustomerChat(client, emulator.bootstrap, {
    identity: 'customer-wren',
    name: 'Wren',
    body: 'Quick question',
    webhookUrl: receiver.url,
  });
  const task = await taskFor(client, emulator, channel.sid);
  const item = reservationItem(page, task.sid);
  await item.getByTestId('accept-button').click();
  await page.getByTestId('end-button').click();

  await item.and(page.locator('[data-status="wrapping"]')).waitFor();
  assert.equal(await page.getByTestId('chat-status').textContent(), 'Wrapping up');
  assert.equal(await page.getByTestId('end-button').isVisible(), false);
  const wrapping = await client.taskrouter.v1.workspaces(emulator.bootstrap.workspace_sid).tasks(task.sid).fetch();
  assert.equal(wrapping.assignmentStatus, 'wrapping');

  await page.getByTestId('complete-button').click();
  await item.and(page.locator('[data-status="completed"]')).waitFor();
  const completed = await client.taskrouter.v1.workspaces(emulator.bootstrap.workspace_sid).tasks(task.sid).fetch();
  assert.equal(completed.assignmentStatus, 'completed');
  assert.equal(await page.getByTestId('complete-button').isVisible(), false);
});
