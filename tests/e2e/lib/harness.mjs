// The end-to-end harness: starts the real binaries and gives tests real clients.
//
// - `startEmulator()` spawns `flex-emulator --port 0` from FLEXBRIDGE_BIN_DIR
//   (default `<repo>/target/debug`), waits for its "listening on" line
//   (docs/architecture.md §2) and reads `GET /_emulator/state`.
// - `startBridge()` spawns `flexbridge serve --port 0 --public-base-url auto`
//   against an emulator (its credentials and SIDs as settings, plus what
//   `flexbridge provision` prints for the backend), on a fresh SQLite file
//   that `restart()` keeps.
// - `twilioClientFor()` is the official `twilio` package pointed at an
//   emulator by base URL only.
// - `webhookReceiver()` is a local HTTP server that records every webhook.
// - `control()` wraps the emulator's control API (`/_emulator/…`).
// - `launchChromium()` drives Debian's /usr/bin/chromium with playwright-core.
// - `waitFor()` polls until a condition holds (tests never sleep).
//
// Everything listens on and talks to 127.0.0.1 only. Every process started
// here is killed by its `stop()` and, at the latest, when the test process exits.

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';
import twilio from 'twilio';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN_DIR = path.resolve(process.env.FLEXBRIDGE_BIN_DIR || path.join(REPO_ROOT, 'target', 'debug'));

/** The "listening on" line both binaries print on stdout (docs/architecture.md §2). */
const LISTENING_LINE = /(flex-emulator|flexbridge) listening on (http:\/\/\S+)/;
/** How much of a service's stderr to keep for error messages. */
const STDERR_TAIL_BYTES = 16 * 1024;
const execFileAsync = promisify(execFile);

// ---- processes ----------------------------------------------------------------

/** Children still running, killed when this process exits whatever happens. */
const liveChildren = new Set();
function killLiveChildren() {
  for (const child of liveChildren) child.kill('SIGKILL');
}
process.on('exit', killLiveChildren);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killLiveChildren();
    process.kill(process.pid, signal);
  });
}

/**
 * Spawns `BIN_DIR/<binary> <args>` and resolves once it prints
 * `<service> listening on <url>`.
 *
 * Rejects, with the exit status and the tail of stderr, when the binary is
 * missing, exits first, or says nothing for `startTimeoutMs`. A service that
 * dies later is reported on stderr with its own stderr tail.
 * Set FLEXBRIDGE_E2E_LOGS=1 to stream the service's stderr live.
 *
 * @param {object} options
 * @param {string} options.binary file name in BIN_DIR
 * @param {string} options.service name in the "listening on" line
 * @param {string[]} options.args
 * @param {Record<string, string>} [options.env] added to this process's environment
 * @param {number} [options.startTimeoutMs]
 * @param {boolean} [options.keepStderr] keep all of stderr (`stderrAll()`), not only its tail
 * @returns {Promise<Service>}
 *
 * @typedef {object} Service
 * @property {string} url base URL from the "listening on" line, no trailing slash
 * @property {import('node:child_process').ChildProcess} child
 * @property {string[]} stdout every stdout line so far
 * @property {() => string} stderr the tail of its stderr so far
 * @property {() => string} stderrAll all of its stderr so far (with `keepStderr`; else the tail)
 * @property {() => {code: number | null, signal: string | null} | undefined} exitStatus once exited
 * @property {() => boolean} running
 * @property {() => Promise<void>} stop SIGTERM, then SIGKILL after 5 s; safe to call twice
 * @property {(signal?: NodeJS.Signals) => Promise<void>} kill sends `signal` (default SIGKILL)
 *   and resolves once the process is gone; an intended death, so not reported
 */
export async function spawnService({ binary, service, args, env = {}, startTimeoutMs = 30_000, keepStderr = false }) {
  const file = path.join(BIN_DIR, binary);
  if (!existsSync(file)) {
    throw new Error(`${file} does not exist: build it first (cargo build -p ${binary}) or set FLEXBRIDGE_BIN_DIR`);
  }
  const child = spawn(file, args, {
    cwd: REPO_ROOT,
    env: { RUST_LOG: 'info', ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);

  let stderrTail = '';
  const stderrChunks = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
    if (keepStderr) stderrChunks.push(chunk);
    if (process.env.FLEXBRIDGE_E2E_LOGS === '1') process.stderr.write(chunk);
  });
  const stdout = [];
  const lines = readline.createInterface({ input: child.stdout });

  let exited = false;
  let exitStatus;
  const exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      exitStatus = { code, signal };
      liveChildren.delete(child);
      resolve({ code, signal });
    });
  });
  let stopping = false;
  const describe = () => `${binary} ${args.join(' ')}`;

  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${describe()} printed no "listening on" line within ${startTimeoutMs} ms\n--- stderr ---\n${stderrTail}`));
    }, startTimeoutMs);
    lines.on('line', (line) => {
      stdout.push(line);
      const match = LISTENING_LINE.exec(line);
      if (match && match[1] === service) {
        clearTimeout(timer);
        resolve(match[2].replace(/\/+$/, ''));
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${describe()}: ${err.message}`));
    });
    exitPromise.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${describe()} exited (code ${code}, signal ${signal}) before listening\n--- stderr ---\n${stderrTail}`));
    });
  });

  exitPromise.then(({ code, signal }) => {
    if (!stopping) {
      process.stderr.write(`\n[harness] ${service} at ${url} died (code ${code}, signal ${signal})\n--- stderr ---\n${stderrTail}\n`);
    }
  });

  return {
    url,
    child,
    stdout,
    stderr: () => stderrTail,
    stderrAll: () => (keepStderr ? stderrChunks.join('') : stderrTail),
    exitStatus: () => exitStatus,
    running: () => !exited,
    async stop() {
      stopping = true;
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exitPromise;
      clearTimeout(timer);
    },
    async kill(signal = 'SIGKILL') {
      stopping = true;
      if (exited) return;
      child.kill(signal);
      await exitPromise;
    },
  };
}

// ---- the emulator ------------------------------------------------------------------

/**
 * Starts a fresh `flex-emulator` on a free port.
 *
 * @param {object} [options]
 * @param {number} [options.agents] workers to bootstrap (alice, bob, …)
 * @param {number} [options.chatCapacity] chat capacity of each worker
 * @param {number} [options.seed] same seed, same SIDs and credentials
 * @param {string} [options.authToken] overrides the seeded auth token
 * @param {string[]} [options.extraArgs]
 * @returns {Promise<Emulator>}
 *
 * @typedef {object} Emulator
 * @property {string} url e.g. http://127.0.0.1:41234
 * @property {any} state `GET /_emulator/state` right after start
 * @property {{accountSid: string, authToken: string, apiKeySid?: string, apiKeySecret?: string}} credentials
 * @property {any} bootstrap the bootstrapped SIDs (`state.bootstrap`)
 * @property {Service} process
 * @property {() => Promise<void>} stop
 */
export async function startEmulator({ agents = 2, chatCapacity = 1, seed = 1, authToken, extraArgs = [] } = {}) {
  const args = ['--port', '0', '--seed', String(seed), '--agents', String(agents), '--chat-capacity', String(chatCapacity)];
  if (authToken !== undefined) args.push('--auth-token', authToken);
  args.push(...extraArgs);
  const service = await spawnService({ binary: 'flex-emulator', service: 'flex-emulator', args });
  try {
    const state = await requestJson('GET', `${service.url}/_emulator/state`);
    const account = state.account ?? {};
    return {
      url: service.url,
      state,
      bootstrap: state.bootstrap,
      credentials: {
        accountSid: account.sid,
        authToken: account.auth_token,
        apiKeySid: account.api_key_sid,
        apiKeySecret: account.api_key_secret,
      },
      process: service,
      stop: () => service.stop(),
    };
  } catch (err) {
    await service.stop();
    throw new Error(`flex-emulator started but its state could not be read: ${err.message}\n--- stderr ---\n${service.stderr()}`);
  }
}

/**
 * `startEmulator()` for one node:test test: stopped when the test ends.
 * @param {import('node:test').TestContext} t
 * @param {Parameters<typeof startEmulator>[0]} [options]
 */
export async function emulatorFor(t, options) {
  const emulator = await startEmulator(options);
  t.after(() => emulator.stop());
  return emulator;
}

// ---- the bridge ---------------------------------------------------------------------

/**
 * The Flex backends the bridge's scenarios run against (`flexbridge serve
 * --backend`, docs/architecture.md §4.2); FLEXBRIDGE_E2E_BACKENDS=chat narrows a local run.
 */
export const BACKENDS = (process.env.FLEXBRIDGE_E2E_BACKENDS || 'chat,conversations').split(',').map((b) => b.trim());

/**
 * The settings that point a bridge at an emulator (docs/architecture.md §4.2),
 * as environment variables: REST with the API key, signatures with the auth
 * token, and the bootstrapped SIDs (`GET /_emulator/state` → `bootstrap`).
 * @param {Emulator} emulator
 */
export function twilioEnvFor(emulator) {
  const { accountSid, authToken, apiKeySid, apiKeySecret } = emulator.credentials;
  const { bootstrap } = emulator;
  return {
    TWILIO_ACCOUNT_SID: accountSid,
    TWILIO_AUTH_TOKEN: authToken,
    TWILIO_API_KEY: apiKeySid,
    TWILIO_API_SECRET: apiKeySecret,
    TWILIO_API_BASE: emulator.url,
    FLEX_CHAT_SERVICE: bootstrap.chat_service_sid,
    TASKROUTER_WORKSPACE_SID: bootstrap.workspace_sid,
    TASKROUTER_WORKFLOW_SID: bootstrap.workflow_sid,
    STUDIO_FLOW_SID: bootstrap.studio_flow_sid,
  };
}

/**
 * Runs `flexbridge provision --backend … [--routing …]` against the emulator
 * (Chat: finds or creates the Flex Flow; Conversations: checks the service,
 * workspace, workflow and flow) and returns the `NAME=value` settings it
 * prints for `serve`.
 * @param {Emulator} emulator
 * @param {{backend: string, routing?: string}} options
 * @returns {Promise<Record<string, string>>}
 */
export async function provision(emulator, { backend, routing }) {
  const file = path.join(BIN_DIR, 'flexbridge');
  const args = ['provision', '--backend', backend];
  if (routing) args.push('--routing', routing);
  const { stdout } = await execFileAsync(file, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...twilioEnvFor(emulator) },
    timeout: 30_000,
  }).catch((err) => {
    throw new Error(`flexbridge ${args.join(' ')} failed: ${err.message}\n--- stderr ---\n${err.stderr ?? ''}`);
  });
  const settings = {};
  for (const line of stdout.split('\n')) {
    const match = /^([A-Z_]+)=(\S+)$/.exec(line.trim());
    if (match) settings[match[1]] = match[2];
  }
  if (settings.FLEX_BACKEND !== backend) {
    throw new Error(`flexbridge ${args.join(' ')} did not print FLEX_BACKEND=${backend}:\n${stdout}`);
  }
  return settings;
}

/**
 * Starts `flexbridge serve` on a free port against an emulator, with a fresh
 * SQLite database in a temp directory (removed by `stop()`).
 *
 * @param {object} options
 * @param {Emulator} options.emulator
 * @param {string} [options.backend] `chat` or `conversations`
 * @param {string} [options.routing] conversations: `interactions` (the bridge's default) or `studio`
 * @param {string} [options.dbPath] a SQLite file to use (kept by `stop()`)
 * @param {{burst: number, perSecond: number}} [options.rateLimit] per customer;
 *   the bridge's own default (20, then 5/s) when absent
 * @param {string[]} [options.extraArgs] more `serve` flags
 * @param {Record<string, string>} [options.env] more environment (wins over the harness's)
 * @param {boolean} [options.keepStderr] keep all of the bridge's stderr (`process.stderrAll()`)
 * @returns {Promise<Bridge>}
 *
 * @typedef {object} Bridge
 * @property {string} url the current process's URL (a restart picks a new port)
 * @property {string} backend
 * @property {string} dbPath
 * @property {Service} process the current process
 * @property {() => Promise<void>} restart stops the process if it runs, starts a new one on the same database
 * @property {(signal?: NodeJS.Signals) => Promise<void>} kill e.g. a crash: `kill('SIGKILL')`
 * @property {() => Promise<void>} stop stops the process and removes a temp database
 */
export async function startBridge({ emulator, backend = 'chat', routing, dbPath, rateLimit, extraArgs = [], env = {}, keepStderr = false }) {
  let tempDir;
  if (!dbPath) {
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'flexbridge-e2e-'));
    dbPath = path.join(tempDir, 'flexbridge.db');
  }
  const serviceEnv = { ...twilioEnvFor(emulator), ...(await provision(emulator, { backend, routing })), ...env };
  const args = [
    'serve',
    '--port', '0',
    '--public-base-url', 'auto',
    '--backend', backend,
    '--database-url', `sqlite://${dbPath}`,
  ];
  if (rateLimit) args.push('--rate-burst', String(rateLimit.burst), '--rate-per-second', String(rateLimit.perSecond));
  args.push(...extraArgs);
  const spawnBridge = () => spawnService({ binary: 'flexbridge', service: 'flexbridge', args, env: serviceEnv, keepStderr });

  const bridge = {
    url: '',
    backend,
    dbPath,
    process: /** @type {Service | undefined} */ (undefined),
    async restart() {
      await bridge.process?.stop();
      bridge.process = await spawnBridge();
      bridge.url = bridge.process.url;
    },
    kill: (signal) => bridge.process?.kill(signal),
    async stop() {
      await bridge.process?.stop();
      if (tempDir) await rm(tempDir, { recursive: true, force: true });
    },
  };
  try {
    await bridge.restart();
  } catch (err) {
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
    throw err;
  }
  return bridge;
}

/**
 * `startBridge()` for one node:test test: stopped when the test ends.
 * @param {import('node:test').TestContext} t
 * @param {Parameters<typeof startBridge>[0]} options
 */
export async function bridgeFor(t, options) {
  const bridge = await startBridge(options);
  t.after(() => bridge.stop());
  return bridge;
}

// ---- clients -------------------------------------------------------------------------

/** The Twilio products the emulator serves, as twilio-node names its domains. */
const EMULATED_DOMAINS = ['flexApi', 'chat', 'conversations', 'taskrouter', 'studio'];

/**
 * The official twilio client, pointed at the emulator by base URL only.
 *
 * @param {Emulator} emulator
 * @param {{apiKey?: boolean}} [options] authenticate with the API key instead of the auth token
 */
export function twilioClientFor(emulator, { apiKey = false } = {}) {
  const { accountSid, authToken, apiKeySid, apiKeySecret } = emulator.credentials;
  const client = apiKey
    ? twilio(apiKeySid, apiKeySecret, { accountSid })
    : twilio(accountSid, authToken);
  // TWILIO_REGION / TWILIO_EDGE in the environment would rewrite the host name.
  client.region = undefined;
  client.edge = undefined;
  for (const domain of EMULATED_DOMAINS) client[domain].baseUrl = emulator.url;
  return client;
}

/** A control-API or HTTP answer that was not 2xx. */
export class HttpError extends Error {
  constructor(method, url, status, body) {
    super(`${method} ${url} answered ${status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

/** One JSON request; resolves with the parsed body (null when empty), rejects with HttpError. */
export async function requestJson(method, url, body, headers = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) throw new HttpError(method, url, response.status, parsed);
  return parsed;
}

/**
 * The emulator's control API (docs/architecture.md §3.4). Agents are given by
 * worker SID or name.
 *
 * @param {{url: string}} emulator
 */
export function control(emulator) {
  const base = `${emulator.url}/_emulator`;
  const seg = encodeURIComponent;
  const get = (p) => requestJson('GET', base + p);
  const post = (p, body) => requestJson('POST', base + p, body);
  const agentPath = (agent) => `/agents/${seg(agent)}`;
  return {
    /** Everything, in Twilio's JSON shapes. */
    state: () => get('/state'),
    /** `[{sid, name, identity, available, capacity, load}]` */
    agents: () => get('/agents'),
    /** `{agent, work: [{reservation, task, channel_sid, backend, customer, messages}]}` */
    agent: (agent) => get(agentPath(agent)),
    accept: (agent, reservationSid) => post(`${agentPath(agent)}/reservations/${seg(reservationSid)}/accept`),
    reject: (agent, reservationSid) => post(`${agentPath(agent)}/reservations/${seg(reservationSid)}/reject`),
    /** An agent (SDK) message: the channel's webhooks fire with `Source=SDK`. */
    send: (agent, taskSid, body) => post(`${agentPath(agent)}/tasks/${seg(taskSid)}/messages`, { body }),
    typing: (agent, taskSid) => post(`${agentPath(agent)}/tasks/${seg(taskSid)}/typing`),
    end: (agent, taskSid) => post(`${agentPath(agent)}/tasks/${seg(taskSid)}/end`),
    complete: (agent, taskSid) => post(`${agentPath(agent)}/tasks/${seg(taskSid)}/complete`),
    setAvailable: (agent, available) => post(`${agentPath(agent)}/activity`, { available }),
    faults: {
      /** `{method?, path, kind: 'error'|'rate_limit'|'delay', status?, retry_after?, delay_ms?, lands?, count}` */
      http: (spec) => post('/faults/http', spec),
      /** `{kind: 'drop'|'duplicate', count, event_type?, copies?}` */
      webhooks: (spec) => post('/faults/webhooks', spec),
      list: () => get('/faults'),
      clear: () => requestJson('DELETE', `${base}/faults`),
    },
    /** The webhook delivery log: `[{url, event_type, params, attempt, status, error, at}]`. */
    webhooks: () => get('/webhooks'),
    reset: () => post('/reset'),
  };
}

// ---- webhooks ------------------------------------------------------------------------------

/**
 * A local server that records every request it gets, as Twilio's webhooks.
 *
 * @param {object} [options]
 * @param {string} [options.path] path of the public URL
 * @param {(request: ReceivedRequest) => ({status?: number, body?: string} | undefined)} [options.respond]
 *   the answer to give (default 200, empty body)
 * @returns {Promise<WebhookReceiver>}
 *
 * @typedef {object} ReceivedRequest
 * @property {string} method
 * @property {string} url the full URL as a client configured it (`http://127.0.0.1:PORT/path?query`)
 * @property {import('node:http').IncomingHttpHeaders} headers
 * @property {Record<string, string | string[]>} params decoded form fields (a repeated name gives an array)
 * @property {string} body the raw body
 *
 * @typedef {object} WebhookReceiver
 * @property {string} url the URL to configure as a webhook
 * @property {string} origin `http://127.0.0.1:PORT`
 * @property {ReceivedRequest[]} requests in arrival order
 * @property {(predicate: (r: ReceivedRequest) => boolean, options?: object) => Promise<ReceivedRequest>} waitFor
 * @property {(authToken: string) => ReceivedRequest[]} invalid the requests whose signature
 *   does not validate with twilio.validateRequest
 * @property {() => Promise<void>} close
 */
export async function webhookReceiver({ path: urlPath = '/webhooks/flex', respond } = {}) {
  const requests = [];
  let origin = '';
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const isForm = (req.headers['content-type'] || '').startsWith('application/x-www-form-urlencoded');
      const record = {
        method: req.method,
        url: `${origin}${req.url}`,
        headers: req.headers,
        params: isForm ? formParams(body) : {},
        body,
      };
      requests.push(record);
      const answer = (respond && respond(record)) || {};
      res.writeHead(answer.status ?? 200, { 'Content-Type': 'text/plain' });
      res.end(answer.body ?? '');
    });
  });
  // Webhook senders may keep connections alive; close() must not wait for them.
  server.keepAliveTimeout = 1_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  origin = `http://127.0.0.1:${server.address().port}`;
  return {
    url: `${origin}${urlPath}`,
    origin,
    requests,
    waitFor: (predicate, options = {}) =>
      waitFor(() => requests.find(predicate), {
        message: 'no matching webhook arrived',
        ...options,
        describe: () => `received so far: ${JSON.stringify(requests.map((r) => r.params.EventType ?? r.url))}`,
      }),
    invalid: (authToken) =>
      requests.filter((r) => !twilio.validateRequest(authToken, r.headers['x-twilio-signature'], r.url, r.params)),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Decodes a form body; a name given several times maps to all its values. */
export function formParams(body) {
  const params = {};
  for (const [name, value] of new URLSearchParams(body)) {
    if (!(name in params)) params[name] = value;
    else if (Array.isArray(params[name])) params[name].push(value);
    else params[name] = [params[name], value];
  }
  return params;
}

/**
 * `webhookReceiver()` for one node:test test: closed when the test ends.
 * @param {import('node:test').TestContext} t
 * @param {Parameters<typeof webhookReceiver>[0]} [options]
 */
export async function webhookReceiverFor(t, options) {
  const receiver = await webhookReceiver(options);
  t.after(() => receiver.close());
  return receiver;
}

// ---- waiting ----------------------------------------------------------------------------------

/**
 * Polls `fn` until it returns a truthy value (awaited), and returns it.
 * Errors thrown by `fn` count as "not yet"; the last one is reported on timeout.
 *
 * @template T
 * @param {() => T | Promise<T>} fn
 * @param {{timeout?: number, interval?: number, message?: string, describe?: () => string}} [options]
 * @returns {Promise<T>}
 */
export async function waitFor(fn, { timeout = 20_000, interval = 50, message = 'condition not met', describe } = {}) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const details = [
        `waitFor timed out after ${timeout} ms: ${message}`,
        lastError ? `last error: ${lastError.stack || lastError}` : null,
        describe ? describe() : null,
      ];
      throw new Error(details.filter(Boolean).join('\n'));
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

// ---- the browser ---------------------------------------------------------------------------------

export const CHROMIUM_PATH = process.env.FLEXBRIDGE_CHROMIUM || '/usr/bin/chromium';

/**
 * Headless Debian Chromium through playwright-core (which never downloads a browser).
 * @returns {Promise<import('playwright-core').Browser>}
 */
export async function launchChromium() {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: install it with scripts/setup (apt-get install chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}
