// The whole loop in headless Chromium, once per backend: a customer on the
// bridge's web chat and an agent on the emulator's agent console — send,
// reply, end, a new chat, and the customer ending that one. Text written on either side is HTML-looking
// and must show as text on the other (no injection on either page).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { flexbridgeFor } from './lib/bridge.mjs';
import { BACKENDS, launchChromium, waitFor } from './lib/harness.mjs';
import { chooseAgent, openConsole, openWebChat, reservationItem } from './lib/pages.mjs';

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

/** What an injection would do if any text were parsed as HTML. */
const CUSTOMER_TEXT = 'Hi <b>there</b> <img src=x onerror="window.__pwned=1"> & welcome';
const AGENT_TEXT = '<script>window.__pwned=2</script><i>Hello</i> <img src=y onerror="window.__pwned=3">';

/** The task Flex made for a channel (there is exactly one per channel). */
async function taskOf(flex, channelSid) {
  return waitFor(async () => (await flex.tasks()).find((task) => task.channelSid === channelSid), {
    message: `no task for ${channelSid}`,
  });
}

for (const backend of BACKENDS) {
  describe(`${backend} backend`, () => {
    test('in Chromium a customer and an agent chat through the bridge: send, reply, end, and a new chat', async (t) => {
      const { emulator, bridge, flex } = await flexbridgeFor(t, { backend, agents: 1 });
      const agentConsole = await openConsole(t, browser, emulator);
      const agentPage = agentConsole.page;
      await chooseAgent(agentPage, emulator, 'alice');
      const webChat = await openWebChat(t, browser, bridge);
      const chatPage = webChat.page;

      // The customer says who they are and writes.
      await chatPage.getByTestId('name-input').fill('Pia');
      await chatPage.getByTestId('name-submit').click();
      const composer = chatPage.getByTestId('composer-input');
      await composer.fill(CUSTOMER_TEXT);
      await composer.press('Enter');
      const customerMessages = chatPage.locator('[data-testid="message"][data-direction="customer"]');
      await customerMessages.and(chatPage.locator('[data-status="delivered"]')).waitFor();

      // The agent sees the reservation live, accepts, reads the message as text and replies.
      const firstChannel = await flex.channelWith(CUSTOMER_TEXT);
      const firstTask = await taskOf(flex, firstChannel.sid);
      const firstItem = reservationItem(agentPage, firstTask.sid);
      await firstItem.and(agentPage.locator('[data-status="pending"]')).waitFor();
      await firstItem.getByTestId('accept-button').click();
      await firstItem.and(agentPage.locator('[data-status="assigned"]')).waitFor();
      const agentList = agentPage.getByTestId('message-list');
      const customerOnConsole = agentList.locator('[data-testid="message"][data-role="customer"]');
      await customerOnConsole.waitFor();
      assert.deepEqual(await customerOnConsole.getByTestId('message-body').allTextContents(), [CUSTOMER_TEXT]);
      const reply = agentPage.getByTestId('composer-input');
      await reply.fill(AGENT_TEXT);
      await reply.press('Enter');

      // The customer gets the reply, as text.
      const agentMessages = chatPage.locator('[data-testid="message"][data-direction="agent"]');
      await agentMessages.waitFor();
      assert.deepEqual(await agentMessages.getByTestId('message-body').allTextContents(), [AGENT_TEXT]);
      assert.deepEqual(await customerMessages.getByTestId('message-body').allTextContents(), [CUSTOMER_TEXT]);
      await chatPage.getByTestId('agent-joined').getByText('alice').waitFor();

      // The agent ends the chat; the customer is told.
      await agentPage.getByTestId('end-button').click();
      await chatPage.getByTestId('chat-ended').waitFor();
      await chatPage.getByTestId('conversation-state').and(chatPage.locator('[data-state="ended"]')).waitFor();
      await firstItem.and(agentPage.locator('[data-status="completed"]')).waitFor();

      // The customer starts a new chat: a new channel and a new task, offered on the console.
      await chatPage.getByTestId('new-chat-button').click();
      await composer.fill('One more question, please');
      await composer.press('Enter');
      const secondChannel = await flex.channelWith('One more question, please');
      assert.notEqual(secondChannel.sid, firstChannel.sid, 'a new Flex channel');
      const secondTask = await taskOf(flex, secondChannel.sid);
      assert.notEqual(secondTask.sid, firstTask.sid, 'a new task');
      const secondItem = reservationItem(agentPage, secondTask.sid);
      await secondItem.and(agentPage.locator('[data-status="pending"]')).waitFor();
      await secondItem.getByTestId('accept-button').click();
      await secondItem.and(agentPage.locator('[data-status="assigned"]')).waitFor();
      await agentList.locator('[data-testid="message"][data-role="customer"]', { hasText: 'One more question, please' }).waitFor();
      await reply.fill('Of course, go ahead');
      await reply.press('Enter');
      await agentMessages.getByTestId('message-body').getByText('Of course, go ahead', { exact: true }).waitFor();

      // The new chat's messages are not hidden under the composer: the list
      // re-scrolls when the "End chat" bar appears above it.
      const list = chatPage.getByTestId('message-list');
      const lastMine = customerMessages.last();
      await waitFor(async () => {
        const [box, item] = [await list.boundingBox(), await lastMine.boundingBox()];
        return box && item && item.y + item.height <= box.y + box.height + 1;
      }, { message: 'the newest message is in view' });

      // The confirmation is keyboard friendly: focus moves into it, Escape
      // closes it back onto "End chat", never onto <body>.
      const focused = () => chatPage.evaluate(() => document.activeElement?.dataset.testid ?? document.activeElement?.tagName);
      await chatPage.getByTestId('end-chat-button').click();
      assert.equal(await focused(), 'end-chat-cancel');
      await chatPage.keyboard.press('Escape');
      await chatPage.getByTestId('end-chat-confirm').waitFor({ state: 'hidden' });
      assert.equal(await focused(), 'end-chat-button');

      // This time the customer ends the chat: asked to confirm, then ended on both sides.
      await chatPage.getByTestId('end-chat-button').click();
      await chatPage.getByTestId('end-chat-confirm').click();
      await chatPage.getByTestId('conversation-state').and(chatPage.locator('[data-state="ended"]')).waitFor();
      await chatPage.getByTestId('new-chat-button').waitFor();
      await chatPage.getByTestId('end-chat-button').waitFor({ state: 'hidden' });
      await waitFor(async () => (await focused()) === 'new-chat-button', { message: 'focus moves to "Start new chat"' });
      assert.equal(await chatPage.getByTestId('ended-by').last().textContent(), 'You ended the chat');
      // The agent's console says the customer left.
      await agentPage.getByTestId('customer-left').waitFor();
      await secondItem.and(agentPage.locator('[data-status="completed"]')).waitFor();
      await waitFor(async () => (await flex.channel(secondChannel.sid)).closed, { message: 'Flex ended the second chat' });

      const { channels, tasks } = await flex.view();
      assert.deepEqual(channels.map((c) => c.sid).sort(), [firstChannel.sid, secondChannel.sid].sort());
      assert.deepEqual(tasks.map((task) => task.sid).sort(), [firstTask.sid, secondTask.sid].sort());
      assert.deepEqual(await flex.customerBodies(firstChannel.sid), [CUSTOMER_TEXT]);
      assert.deepEqual(await flex.customerBodies(secondChannel.sid), ['One more question, please']);

      // Nothing was ever parsed as HTML, and nothing went wrong in either page.
      for (const { page, errors, requests } of [webChat, agentConsole]) {
        assert.equal(await page.evaluate(() => window.__pwned), undefined);
        assert.equal(await page.getByTestId('message-list').locator('img, b, i, script').count(), 0);
        assert.deepEqual(errors, [], 'no script errors');
        const origin = new URL(page.url()).origin;
        assert.deepEqual(requests.filter((url) => !url.startsWith(`${origin}/`)), [], 'the page fetched only from its own origin');
      }
    });
  });
}
