// The build contract with the bridge's build.rs: `WIDGET_OUT_DIR=… npm run
// build` writes exactly index.html, widget.js, widget.css and embed.js, and the page
// obeys the bridge's Content-Security-Policy (no inline script or style, no
// external URL).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cspProblems } from '../build.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

describe('build', () => {
  test('WIDGET_OUT_DIR receives exactly the four files, self-contained', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'widget-build-'));
    try {
      await promisify(execFile)(process.execPath, ['build.mjs'], {
        cwd: root,
        env: { ...process.env, WIDGET_OUT_DIR: out },
      });
      assert.deepEqual((await readdir(out)).sort(), ['embed.js', 'index.html', 'widget.css', 'widget.js']);

      const html = await readFile(path.join(out, 'index.html'), 'utf8');
      assert.deepEqual(cspProblems(html), []);
      assert.match(html, /<script type="module" src="widget\.js"><\/script>/);
      assert.match(html, /<link rel="stylesheet" href="widget\.css">/);

      const js = await readFile(path.join(out, 'widget.js'), 'utf8');
      assert.doesNotMatch(js, /^\s*import\s/m, 'one bundle: no import statements left');
      assert.doesNotMatch(js, /from\s*["']socket\.io-client["']/);
      assert.match(js, /emitWithAck/, 'socket.io-client is bundled in');

      const embed = await readFile(path.join(out, 'embed.js'), 'utf8');
      assert.doesNotMatch(embed, /^\s*(import|export)\s/m, 'a classic script: it runs from a plain <script src>');
      assert.match(embed, /FlexBridge/, 'it defines window.FlexBridge');

      const css = await readFile(path.join(out, 'widget.css'), 'utf8');
      assert.doesNotMatch(css, /@import|url\(\s*["']?(https?:)?\/\//, 'the stylesheet loads nothing');
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  test('cspProblems catches what the CSP would block', () => {
    assert.deepEqual(cspProblems('<script src="widget.js"></script>'), []);
    assert.deepEqual(cspProblems('<script>alert(1)</script>'), ['inline <script>']);
    assert.deepEqual(cspProblems('<p style="color:red">'), ['style= attribute']);
    assert.deepEqual(cspProblems('<style>p{}</style>'), ['<style> element']);
    assert.deepEqual(cspProblems('<button onclick="x()">'), ['inline event handler']);
    assert.deepEqual(cspProblems('<script src="https://cdn.example/x.js"></script>'), ['external URL']);
    assert.deepEqual(cspProblems('<link href="//fonts.example/f.css">'), ['external URL']);
  });
});
