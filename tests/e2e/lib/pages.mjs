// The two web pages of the product, opened in headless Chromium: the
// emulator's agent console (data-testids in crates/flex-emulator/console/)
// and the bridge's web chat (data-testids in widget/README.md). Each page
// gets a fresh browser context (empty storage) closed when the test ends,
// and records the URLs it requests and the script errors it raises.

import assert from 'node:assert/strict';

import { control } from './harness.mjs';

/** Generous: a loaded 2-core machine runs several suites at once. */
export const UI_TIMEOUT = 20_000;

/**
 * A page at `url` in a fresh context.
 * @param {import('node:test').TestContext} t
 * @param {import('playwright-core').Browser} browser
 */
async function openPage(t, browser, url, { viewport = { width: 1024, height: 768 } } = {}) {
  const context = await browser.newContext({ viewport });
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT);
  const requests = [];
  const errors = [];
  page.on('request', (request) => requests.push(request.url()));
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  return { page, requests, errors };
}

/** The agent console of an emulator, once its agent picker is usable. */
export async function openConsole(t, browser, emulator, options) {
  const opened = await openPage(t, browser, `${emulator.url}/`, options);
  await opened.page.getByTestId('agent-picker').and(opened.page.locator(':enabled')).waitFor();
  return opened;
}

/** Picks an agent in the console and waits until their own view has loaded. */
export async function chooseAgent(page, emulator, name) {
  const agents = await control(emulator).agents();
  const agent = agents.find((a) => a.name === name);
  assert.ok(agent, `agent ${name} exists: ${JSON.stringify(agents)}`);
  await page.getByTestId('agent-picker').selectOption(agent.sid);
  // The agent's own view has loaded once the availability toggle speaks of them.
  await page.locator(`[data-testid="availability-toggle"]:enabled[title^="${name} is "]`).waitFor();
  return agent;
}

/** The console's list item of one task's reservation. */
export const reservationItem = (page, taskSid) =>
  page.locator(`[data-testid="reservation-item"][data-task-sid="${taskSid}"]`);

/** The bridge's web chat (a new customer: empty storage), once it is connected. */
export async function openWebChat(t, browser, bridge, options) {
  const opened = await openPage(t, browser, `${bridge.url}/`, options);
  await opened.page.getByTestId('status').and(opened.page.locator('[data-state="connected"]')).waitFor();
  return opened;
}
