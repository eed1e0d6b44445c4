// Attachments over the documented protocol (docs/protocol.md §Attachments),
// once per backend, with socket.io-client and plain HTTP: a customer's file
// reaches the agent exactly once through the Media Content Service answering
// 500 and 429, a message post that lands behind a 500, and the bridge killed
// with SIGKILL while an upload is in flight; the agent's file reaches its
// customer, who downloads it, and no one else (another customer's file id is
// a 404). Refused uploads (over the limit, a refused type, a PNG declared as
// text/html or as text) are answered with a clear error and leave nothing in
// the bridge's database.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';

import { flexbridgeFor } from './lib/bridge.mjs';
import { BACKENDS, waitFor } from './lib/harness.mjs';

const FAST = { burst: 100, perSecond: 100 };
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const PDF = Buffer.from('%PDF-1.7\n%%EOF\n');
const MEDIA_PATH = '/v1/Services/*/Media';

/** `POST /attachments` with the customer's token: `{status, body}`. */
async function upload(bridgeUrl, token, type, bytes, name = 'shot.png') {
  const response = await fetch(`${bridgeUrl}/attachments?name=${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': type },
    body: bytes,
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

/** `GET /attachments/{id}` with `token`. */
function download(bridgeUrl, token, id) {
  return fetch(`${bridgeUrl}/attachments/${id}`, { headers: { Authorization: `Bearer ${token}` } });
}

/** Uploads a PNG and sends it as a message; the ack's `ok`. */
async function sendPng(world, customer) {
  const { status, body } = await upload(world.bridge.url, customer.token, 'image/png', PNG);
  assert.equal(status, 201, JSON.stringify(body));
  return customer.request('message', { clientMessageId: `file-${randomBytes(4).toString('hex')}`, attachment: body.attachment.id });
}

/** The customers' file messages of a channel. */
async function customerFiles(flex, channelSid) {
  return (await flex.channel(channelSid)).messages.filter((m) => m.media && !flex.isAgent(m.author));
}

for (const backend of BACKENDS) {
  describe(`${backend} backend`, () => {
    test('a file reaches the agent exactly once through MCS 500s and 429s, a landed post and a SIGKILL; the agent’s file reaches its customer only', async (t) => {
      const world = await flexbridgeFor(t, { backend, agents: 1, rateLimit: FAST });
      const { bridge, flex } = world;
      const ada = await world.customer('Ada');
      await ada.send('Ada opens the chat');
      const channel = await flex.channelWith('Ada opens the chat');
      const agent = await flex.acceptChat(channel.sid);

      await flex.api.faults.http({ method: 'POST', path: MEDIA_PATH, kind: 'error', status: 500, lands: false, count: 2 });
      await flex.api.faults.http({ method: 'POST', path: MEDIA_PATH, kind: 'rate_limit', retry_after: 1, count: 1 });
      const path = flex.profile.messageCreatePath;
      await flex.api.faults.http({ method: 'POST', path, kind: 'error', status: 500, lands: true, count: 1 });
      const first = await sendPng(world, ada);
      assert.equal((await ada.delivered(first.clientMessageId, { timeout: 60_000 })).status, 'delivered');
      assert.equal((await customerFiles(flex, channel.sid)).length, 1);

      // The next upload lands in MCS but its answer is held back; the bridge dies meanwhile.
      await flex.api.faults.http({ method: 'POST', path: MEDIA_PATH, kind: 'delay', delay_ms: 60_000, count: 1 });
      const second = await sendPng(world, ada);
      await waitFor(async () => (await flex.api.faults.list()).http.length === 0, {
        message: 'the held upload reached MCS',
      });
      const lastSeq = ada.lastSeq();
      await bridge.kill('SIGKILL');
      await ada.next('disconnect');
      await bridge.restart();
      const back = await world.reconnect(ada, { lastSeq });
      await waitFor(async () => (await customerFiles(flex, channel.sid)).length >= 2, { timeout: 60_000, message: 'the second file reaches Flex' });
      await new Promise((resolve) => setTimeout(resolve, 500));
      const files = await customerFiles(flex, channel.sid);
      assert.equal(files.length, 2, 'each file once');
      assert.notEqual(files[0].media.sid, files[1].media.sid);
      assert.equal(files[1].media.content_type, 'image/png');
      const history = await back.history();
      assert.deepEqual(
        history.filter((m) => m.attachment).map((m) => m.clientMessageId),
        [first.clientMessageId, second.clientMessageId],
      );

      // The agent answers with a PDF: its customer downloads it; another customer gets 404.
      const control = `${world.emulator.url}/_emulator/agents/${agent.sid}/tasks/${agent.taskSid}/messages`;
      const sent = await fetch(control, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ media: { filename: 'guide.pdf', content_type: 'application/pdf', content_base64: PDF.toString('base64') } }),
      });
      assert.equal(sent.status, 201);
      const reply = await back.next('message', (m) => m.direction === 'agent' && m.attachment);
      assert.deepEqual(
        { name: reply.attachment.name, type: reply.attachment.type, size: reply.attachment.size },
        { name: 'guide.pdf', type: 'application/pdf', size: PDF.length },
      );
      const mine = await download(bridge.url, ada.token, reply.attachment.id);
      assert.equal(mine.status, 200);
      assert.equal(mine.headers.get('x-content-type-options'), 'nosniff');
      assert.match(mine.headers.get('content-disposition'), /^attachment; filename="guide.pdf"/);
      assert.deepEqual(Buffer.from(await mine.arrayBuffer()), PDF);
      const bob = await world.customer('Bob');
      for (const id of [reply.attachment.id, history.find((m) => m.attachment).attachment.id]) {
        assert.equal((await download(bridge.url, bob.token, id)).status, 404, 'another customer’s file is not found');
      }
      assert.equal((await download(bridge.url, 'no-such-token', reply.attachment.id)).status, 401);
    });
  });
}

test('over the limit, a refused type or a PNG declared as text/html: a clear error and nothing stored', async (t) => {
  const world = await flexbridgeFor(t, { backend: BACKENDS[0], bridgeArgs: ['--attachment-max-bytes', '4096'] });
  const ada = await world.customer('Ada');
  const marker = () => Buffer.from(`marker-${randomBytes(12).toString('hex')}`);
  const stored = async (bytes) => {
    const files = await Promise.all(
      ['', '-wal'].map((suffix) => readFile(`${world.bridge.dbPath}${suffix}`).catch(() => Buffer.alloc(0))),
    );
    return files.some((file) => file.includes(bytes));
  };
  const cases = [
    { type: 'text/html', bytes: Buffer.concat([PNG, marker()]), status: 415, code: 'type_not_allowed' },
    { type: 'text/plain', bytes: Buffer.concat([PNG, marker()]), status: 422, code: 'content_mismatch' },
    { type: 'image/svg+xml', bytes: Buffer.concat([Buffer.from('<svg>'), marker()]), status: 415, code: 'type_not_allowed' },
    { type: 'image/png', bytes: Buffer.concat([PNG, marker(), Buffer.alloc(5000)]), status: 413, code: 'too_large' },
  ];
  for (const { type, bytes, status, code } of cases) {
    const answer = await upload(world.bridge.url, ada.token, type, bytes);
    assert.equal(answer.status, status, `${type}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.error.code, code);
    assert.ok(answer.body.error.message.length > 10, 'a message a person can read');
    assert.equal(await stored(bytes.subarray(PNG.length, PNG.length + 31)), false, `${type}: nothing stored`);
  }
  // The same check sees an accepted file.
  const accepted = Buffer.concat([PNG, marker()]);
  assert.equal((await upload(world.bridge.url, ada.token, 'image/png', accepted)).status, 201);
  assert.equal(await stored(accepted.subarray(PNG.length)), true);
  // A message naming a file that is not the customer's is refused.
  await assert.rejects(
    ada.request('message', { clientMessageId: 'forged', attachment: `att_${'0'.repeat(32)}` }),
    (error) => error.code === 'unknown_attachment',
  );
});
