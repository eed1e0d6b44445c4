import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkFile, formatSize, upload } from '../src/files.js';
import { Sender } from '../src/sender.js';
import { ChatStore } from '../src/store.js';

const settings = { types: ['image/png', 'application/pdf'], maxBytes: 1000 };

describe('files', () => {
  test('a file is checked against the bridge settings before it is uploaded', () => {
    assert.deepEqual(checkFile({ name: 'a.png', type: 'image/png', size: 10 }, settings), { ok: true });
    assert.equal(checkFile({ name: 'a.svg', type: 'image/svg+xml', size: 10 }, settings).error, 'fileTypeRefused');
    assert.equal(checkFile({ name: 'b.pdf', type: 'application/pdf', size: 1001 }, settings).error, 'fileTooLarge');
    assert.equal(checkFile({ name: 'c.pdf', type: 'application/pdf', size: 0 }, settings).error, 'fileEmpty');
    assert.equal(formatSize(2048), '2 KB');
    assert.equal(formatSize(3 * 1024 * 1024), '3.0 MB');
  });

  test('the upload sends the token and the type, reports progress and reads the answer', async () => {
    const sent = {};
    class FakeXHR {
      upload = { addEventListener: (_, fn) => (this.onProgress = fn) };
      open(method, url) {
        Object.assign(sent, { method, url });
      }
      setRequestHeader(name, value) {
        sent[name] = value;
      }
      addEventListener(name, fn) {
        this[name] = fn;
      }
      send(body) {
        sent.body = body;
        this.onProgress({ lengthComputable: true, loaded: 5, total: 10 });
        this.status = 201;
        this.responseText = JSON.stringify({ attachment: { id: 'att_1', name: 'a b.png', type: 'image/png', size: 10 } });
        this.load();
      }
    }
    const progress = [];
    const file = { name: 'a b.png', type: 'image/png', size: 10 };
    const answer = await upload(file, 'tok', (f) => progress.push(f), FakeXHR);
    assert.deepEqual(answer.ok, { id: 'att_1', name: 'a b.png', type: 'image/png', size: 10 });
    assert.equal(sent.url, 'attachments?name=a%20b.png');
    assert.equal(sent.Authorization, 'Bearer tok');
    assert.equal(sent['Content-Type'], 'image/png');
    assert.deepEqual(progress, [0.5]);
  });

  test("a file's message names the upload instead of carrying text", async () => {
    const store = new ChatStore();
    const payloads = [];
    const sender = new Sender({ store, transmit: async (p) => (payloads.push(p), { ok: { seq: 1 } }), newId: () => 'c1' });
    sender.setOnline(true);
    const attachment = { id: 'att_1', name: 'a.png', type: 'image/png', size: 10 };
    sender.send('a.png', { attachment });
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(payloads, [{ clientMessageId: 'c1', attachment: 'att_1' }]);
    assert.deepEqual(store.items().find((i) => i.kind === 'message').attachment, attachment);
  });
});
