// The web chat embedded in another site (docs/embedding.md), in headless
// Chromium: a page served from a second origin (another port) includes
// /embed.js; the customer opens the launcher, fills the pre-engagement form
// and writes, then sends a screenshot; the agent (the console, a second
// page) sees the form's answers in the task and the image, answers with a
// PDF the customer downloads, replies while the panel is minimised (the launcher's badge
// counts it), ends the chat; the customer sees who ended it and downloads
// the transcript. A site not in ALLOWED_ORIGINS can neither frame the chat
// nor open its socket. Branding and a forced language change the page with
// no rebuild (the same binary, other settings). axe-core finds no serious or
// critical violation on the launcher, the form and the open chat.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import { flexOf } from './lib/flex.mjs';
import { BACKENDS, bridgeFor, emulatorFor, launchChromium, waitFor } from './lib/harness.mjs';
import { chooseAgent, openConsole, reservationItem, UI_TIMEOUT } from './lib/pages.mjs';

const require = createRequire(import.meta.url);
let browser;
let axeSource;
before(async () => {
  browser = await launchChromium();
  axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
});
after(async () => {
  await browser?.close();
});

/** A site of its own origin (127.0.0.1, another port) serving `html` at `/`. */
async function siteFor(t, html) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

/** A shop page with CSS that would leak into any widget that inherits from it. */
const shopPage = (bridgeUrl) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title>
<style>
  * { color: rgb(200, 0, 0) !important; font-size: 31px !important; letter-spacing: 4px !important; }
  button { border-radius: 0; background: rgb(1, 2, 3); }
</style></head>
<body><main><h1>Our shop</h1><button id="buy" type="button">Buy</button></main>
<script src="${bridgeUrl}/embed.js" async></script></body></html>`;

async function newPage(t, url, options = {}) {
  const context = await browser.newContext({ acceptDownloads: true, ...options });
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT);
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  if (url) await page.goto(url);
  return { page, errors, context };
}

/** axe-core's serious and critical violations on `target` (a page or a frame), `include` limiting it. */
async function seriousViolations(target, include) {
  await target.evaluate(axeSource);
  const results = await target.evaluate(
    (selector) => globalThis.axe.run(selector ? { include: [selector] } : document, { resultTypes: ['violations'] }),
    include ?? null,
  );
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

async function taskOf(flex, channelSid) {
  return waitFor(async () => (await flex.tasks()).find((task) => task.channelSid === channelSid), {
    message: `no task for ${channelSid}`,
  });
}

for (const backend of BACKENDS) {
  describe(`${backend} backend`, () => {
    test('a site of another origin embeds the chat: form, chat, badge, agent ends, transcript', async (t) => {
      const emulator = await emulatorFor(t, { agents: 1 });
      // The site's port is only known once it listens: start it first, then the bridge that lists it.
      let bridgeUrl = '';
      const server = http.createServer((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(shopPage(bridgeUrl));
      });
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      t.after(() => new Promise((resolve) => server.close(resolve)));
      const site = `http://127.0.0.1:${server.address().port}`;
      const bridge = await bridgeFor(t, {
        emulator,
        backend,
        env: {
          ALLOWED_ORIGINS: site,
          FLEXBRIDGE_WIDGET_FORM_EMAIL: 'required',
          FLEXBRIDGE_WIDGET_FORM_TOPIC: 'optional',
          FLEXBRIDGE_WIDGET_FORM_TOPICS: 'Orders, Returns',
        },
      });
      bridgeUrl = bridge.url;
      const flex = flexOf(emulator, backend);

      const { page, errors } = await newPage(t, `${site}/`);
      const launcher = page.getByTestId('launcher');
      await launcher.waitFor();
      // No CSS leaks in: the shop's `* {…}` reaches neither the launcher nor the chat.
      const launcherStyle = await launcher.evaluate((el) => {
        const s = getComputedStyle(el);
        return { width: s.width, radius: s.borderRadius, spacing: s.letterSpacing };
      });
      assert.deepEqual(launcherStyle, { width: '60px', radius: '50%', spacing: 'normal' });
      // …and none leaks out: the shop's own button and stylesheets are as they were.
      assert.equal(await page.evaluate(() => document.styleSheets.length), 1);
      assert.equal(await page.locator('#buy').evaluate((el) => getComputedStyle(el).borderRadius), '0px');
      assert.deepEqual(await seriousViolations(page), [], 'the launcher is accessible');

      await launcher.click();
      assert.equal(await launcher.getAttribute('aria-expanded'), 'true');
      const chat = page.frameLocator('[data-testid="chat-frame"]');
      await chat.getByTestId('status').and(chat.locator('[data-state="connected"]')).waitFor();
      assert.equal(
        await chat.getByTestId('chat-title').evaluate((el) => getComputedStyle(el).letterSpacing),
        'normal',
        'the shop’s CSS does not reach into the chat',
      );

      // The form: an e-mail is required here, and a wrong one is named by the bridge.
      await chat.getByTestId('name-input').fill('Mia');
      await chat.getByTestId('email-input').fill('not-an-address');
      await chat.getByTestId('question-input').fill('Where is order 42?');
      await chat.getByTestId('topic-input').selectOption('Orders');
      const frame = page.frames().find((f) => f.url().startsWith(bridge.url));
      assert.deepEqual(await seriousViolations(frame), [], 'the form is accessible');
      await chat.getByTestId('name-submit').click();
      await chat.getByTestId('email-field-error').waitFor();
      assert.equal(await chat.getByTestId('email-input').getAttribute('aria-invalid'), 'true');
      await chat.getByTestId('email-input').fill('mia@example.com');
      await chat.getByTestId('name-submit').click();

      const composer = chat.getByTestId('composer-input');
      await composer.fill('Hello from the shop, see https://shop.example/orders/42.');
      await composer.press('Enter');
      const mine = chat.locator('[data-testid="message"][data-direction="customer"]');
      await mine.and(chat.locator('[data-status="delivered"]')).waitFor();
      const link = mine.locator('a');
      assert.equal(await link.getAttribute('href'), 'https://shop.example/orders/42');
      assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await mine.getByTestId('message-body').getAttribute('dir'), 'auto');
      await chat.getByTestId('day-separator').first().waitFor();

      // The agent sees the form's answers in the task, on the console.
      const channel = await flex.channelWith('Hello from the shop, see https://shop.example/orders/42.');
      const task = await taskOf(flex, channel.sid);
      assert.equal(task.attributes.pre_engagement_data.email, 'mia@example.com');
      assert.equal(task.attributes.pre_engagement_data.question, 'Where is order 42?');
      assert.equal(task.attributes.pre_engagement_data.topic, 'Orders');
      const agentConsole = await openConsole(t, browser, emulator);
      const agentPage = agentConsole.page;
      await chooseAgent(agentPage, emulator, 'alice');
      const item = reservationItem(agentPage, task.sid);
      await item.and(agentPage.locator('[data-status="pending"]')).waitFor();
      await item.getByTestId('accept-button').click();
      await item.and(agentPage.locator('[data-status="assigned"]')).waitFor();
      assert.equal(await agentPage.getByTestId('detail-email').textContent(), 'mia@example.com');
      assert.equal(await agentPage.getByTestId('detail-question').textContent(), 'Where is order 42?');
      assert.equal(await agentPage.getByTestId('detail-topic').textContent(), 'Orders');

      // A screenshot from the customer: uploaded with progress, shown as a thumbnail, seen by the agent.
      const png = Buffer.from(
        '89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
          '1f15c4890000000d49444154789c6360f8ffff3f0005fe02fea7d6a4590000000049454e44ae426082',
        'hex',
      );
      await chat.getByTestId('attach-input').setInputFiles({ name: 'screenshot.png', mimeType: 'image/png', buffer: png });
      const sentFile = mine.and(chat.locator('[data-status="delivered"]')).filter({ has: chat.getByTestId('attachment') });
      await sentFile.waitFor();
      await waitFor(
        async () => (await sentFile.getByTestId('attachment-thumbnail').evaluate((img) => img.complete && img.naturalWidth)) === 1,
        { message: 'the thumbnail shows the image' },
      );
      const agentImage = agentPage.getByTestId('message-image');
      await agentImage.waitFor();
      await waitFor(async () => (await agentImage.evaluate((img) => img.complete && img.naturalWidth)) === 1, {
        message: 'the console shows the image',
      });
      // The agent answers with a PDF; the customer downloads it.
      const pdf = Buffer.from('%PDF-1.7\n%%EOF\n');
      await agentPage.getByTestId('attach-input').setInputFiles({ name: 'guide.pdf', mimeType: 'application/pdf', buffer: pdf });
      const agentFile = chat.locator('[data-testid="message"][data-direction="agent"]').filter({ has: chat.getByTestId('attachment') });
      await agentFile.waitFor();
      const pdfDownload = page.waitForEvent('download');
      await agentFile.getByTestId('attachment-download').click();
      const savedPdf = await pdfDownload;
      assert.equal(savedPdf.suggestedFilename(), 'guide.pdf');
      assert.deepEqual(await readFile(await savedPdf.path()), pdf);

      // Minimised, the chat stays live: the agent's reply shows on the badge; opening clears it.
      await chat.getByTestId('minimise-button').click();
      await page.getByTestId('panel').waitFor({ state: 'hidden' });
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'flexbridge-chat', 'focus is back on the launcher');
      const reply = agentPage.getByTestId('composer-input');
      await reply.fill('Hi Mia, it ships today.');
      await reply.press('Enter');
      const badge = page.getByTestId('launcher-badge');
      await waitFor(async () => (await badge.textContent()) === '1', { message: 'the badge counts the reply' });
      assert.match(await launcher.getAttribute('aria-label'), /1 unread/);
      // Remembered across page loads: still minimised, the chat still there.
      await page.reload();
      await page.getByTestId('launcher').waitFor();
      assert.equal(await page.getByTestId('launcher').getAttribute('aria-expanded'), 'false');
      await page.getByTestId('launcher').click();
      await chat.getByTestId('message-body').getByText('Hi Mia, it ships today.').waitFor();
      await waitFor(async () => !(await badge.isVisible()), { message: 'opening clears the badge' });
      await page.reload();
      await page.getByTestId('panel').waitFor({ state: 'visible' });
      assert.deepEqual(await seriousViolations(page.frames().find((f) => f.url().startsWith(bridge.url))), [], 'the open chat is accessible');

      // The agent ends the chat; the customer is told who, and thanked.
      await agentPage.getByTestId('end-button').click();
      const ended = chat.getByTestId('chat-ended');
      await ended.waitFor();
      assert.equal(await ended.getByTestId('ended-by').textContent(), 'alice ended the chat');
      assert.equal(await ended.getByTestId('thank-you').textContent(), 'Thank you for chatting with us.');

      // The transcript, rendered by the bridge for this customer.
      const download = page.waitForEvent('download');
      await chat.getByTestId('transcript-button').click();
      const file = await download;
      const text = await readFile(await file.path(), 'utf8');
      assert.match(file.suggestedFilename(), /^chat-\d{4}-\d{2}-\d{2}\.txt$/);
      assert.match(text, /Mia \(you\): Hello from the shop/);
      assert.match(text, /alice: Hi Mia, it ships today\./);
      assert.match(text, /alice ended the chat\./);
      assert.match(text, /Mia \(you\): \[attachment\] screenshot\.png \(image\/png/);
      assert.match(text, /alice: \[attachment\] guide\.pdf \(application\/pdf/);
      assert.deepEqual(errors, [], 'no script errors on the shop page');
    });
  });
}

test('a site not in ALLOWED_ORIGINS can neither frame the chat nor open its socket', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1 });
  const bridge = await bridgeFor(t, { emulator, backend: BACKENDS[0] });
  const site = await siteFor(
    t,
    `<!doctype html><html lang="en"><head><title>Elsewhere</title></head><body>
     <iframe id="direct" title="chat" src="${bridge.url}/?embed=1"></iframe>
     <script src="${bridge.url}/embed.js" async></script></body></html>`,
  );
  const { page } = await newPage(t);
  const warnings = [];
  page.on('console', (message) => warnings.push(message.text()));
  const framed = page.waitForEvent('response', (r) => r.url().startsWith(`${bridge.url}/?embed=1`));
  await page.goto(site);
  const response = await framed;
  assert.match(response.headers()['content-security-policy'], /frame-ancestors 'self';/);
  // The browser refuses to show it: the frame never gets the chat page.
  await waitFor(() => warnings.some((w) => w.includes('ALLOWED_ORIGINS')), { message: 'embed.js says why it stops' });
  const child = page.frames().find((f) => f !== page.mainFrame());
  assert.equal(await child.locator('[data-testid="status"]').count(), 0, 'the chat page is not shown in the frame');
  assert.equal(await page.getByTestId('launcher').count(), 0, 'no launcher');

  // A socket from this page is refused before Engine.IO (the customer's token would not help).
  const customer = await (async () => {
    const { connectCustomer } = await import('./lib/customer.mjs');
    const c = await connectCustomer(bridge.url);
    t.after(() => c.disconnect());
    return c.register('Victim');
  })();
  const opened = await page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('refused');
      }),
    `${bridge.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`,
  );
  assert.equal(opened, 'refused');
  const poll = (origin) =>
    fetch(`${bridge.url}/socket.io/?EIO=4&transport=polling`, { headers: origin ? { Origin: origin } : {} });
  assert.equal((await poll(site)).status, 403, 'polling from the site');
  assert.equal((await poll(bridge.url)).status, 200, 'the bridge’s own page may');
  assert.equal((await poll(null)).status, 200, 'a client that is no page (no Origin) may');
  assert.ok(customer.token, 'the customer exists; the refusal did not depend on a token');
});

test('branding and a forced language change the page with no rebuild', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1 });
  const branded = await bridgeFor(t, {
    emulator,
    backend: BACKENDS[0],
    env: {
      FLEXBRIDGE_WIDGET_TITLE: 'Acme Hilfe',
      FLEXBRIDGE_WIDGET_LANGUAGE: 'de',
      FLEXBRIDGE_WIDGET_COLOR: '#0a7d5a',
      FLEXBRIDGE_WIDGET_GREETING: 'Willkommen bei Acme!',
    },
  });
  const { page } = await newPage(t, `${branded.url}/`, { locale: 'fr-FR' });
  await page.getByTestId('status').and(page.locator('[data-state="connected"]')).waitFor();
  assert.equal(await page.getByTestId('chat-title').textContent(), 'Acme Hilfe');
  assert.equal(await page.getByTestId('greeting').textContent(), 'Willkommen bei Acme!');
  assert.equal(await page.getByTestId('name-submit').textContent(), 'Chat starten', 'German, although the browser asks for French');
  assert.deepEqual(await page.evaluate(() => [document.documentElement.lang, document.documentElement.dir, document.title]), ['de', 'ltr', 'Acme Hilfe']);
  assert.equal(await page.getByTestId('name-submit').evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(10, 125, 90)');
  assert.deepEqual(await seriousViolations(page), [], 'the branded form is accessible');

  // The same binary with no language forced: the browser's French.
  const plain = await bridgeFor(t, { emulator, backend: BACKENDS[0] });
  const french = await newPage(t, `${plain.url}/`, { locale: 'fr-FR' });
  await french.page.getByTestId('name-submit').getByText('Démarrer').waitFor();
  assert.equal(await french.page.getByTestId('chat-title').textContent(), 'Discutez avec nous');
  assert.equal(await french.page.evaluate(() => document.documentElement.lang), 'fr');
});

test('on a phone the open panel fills the screen, and Escape minimises it back onto the launcher', async (t) => {
  const emulator = await emulatorFor(t, { agents: 1 });
  let bridgeUrl = '';
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(shopPage(bridgeUrl));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const site = `http://127.0.0.1:${server.address().port}`;
  const bridge = await bridgeFor(t, { emulator, backend: BACKENDS[0], env: { ALLOWED_ORIGINS: site } });
  bridgeUrl = bridge.url;
  const { page } = await newPage(t, `${site}/`, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const launcher = page.getByTestId('launcher');
  await launcher.focus();
  await page.keyboard.press('Enter');
  const panel = page.getByTestId('panel');
  await panel.waitFor();
  assert.deepEqual(await panel.boundingBox(), { x: 0, y: 0, width: 390, height: 844 });
  assert.equal(await launcher.isVisible(), false, 'the launcher hides behind the full-screen panel');
  const chat = page.frameLocator('[data-testid="chat-frame"]');
  await chat.getByTestId('name-input').click();
  await chat.getByTestId('name-input').press('Escape');
  await panel.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'flexbridge-chat');
  assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
});
