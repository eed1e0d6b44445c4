// Builds the web chat into exactly four files, which the bridge embeds:
//
//   $WIDGET_OUT_DIR/index.html   the page (no inline script or style: the bridge's CSP forbids them)
//   $WIDGET_OUT_DIR/widget.js    one minified ES module: src/main.js + socket.io-client
//   $WIDGET_OUT_DIR/widget.css   the stylesheet, minified
//   $WIDGET_OUT_DIR/embed.js     the loader other sites include (a classic script, no imports)
//
// WIDGET_OUT_DIR defaults to widget/dist/. The bridge's build.rs runs
// `npm ci` (when node_modules is missing) and then `WIDGET_OUT_DIR=… npm run build`.
//
//   node build.mjs           build once
//   node build.mjs --watch   rebuild on every change under src/ (development)

import { watchFile } from 'node:fs';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(root, 'src');
const outDir = path.resolve(process.env.WIDGET_OUT_DIR || path.join(root, 'dist'));
const watch = process.argv.includes('--watch');

/** The page references its assets by these relative names; build.rs embeds the same three. */
const OUTPUTS = ['index.html', 'widget.js', 'widget.css', 'embed.js'];

const common = {
  bundle: true,
  minify: true,
  legalComments: 'none',
  target: ['es2022', 'chrome109', 'firefox115', 'safari16'],
  logLevel: 'warning',
  absWorkingDir: root,
};

const js = {
  ...common,
  entryPoints: [path.join(src, 'main.js')],
  outfile: path.join(outDir, 'widget.js'),
  format: 'esm',
  platform: 'browser',
  // socket.io-client ships a debug build for Node; the browser build has no `debug` dependency.
  conditions: ['browser'],
  define: { 'process.env.NODE_ENV': '"production"' },
};

const embed = {
  ...common,
  entryPoints: [path.join(src, 'embed.js')],
  outfile: path.join(outDir, 'embed.js'),
  format: 'iife',
  platform: 'browser',
};

const css = {
  ...common,
  entryPoints: [path.join(src, 'widget.css')],
  outfile: path.join(outDir, 'widget.css'),
};

/** Copies index.html, checking that it still obeys the bridge's Content-Security-Policy. */
const htmlPlugin = {
  name: 'index-html',
  setup(build) {
    build.onEnd(async (result) => {
      if (result.errors.length) return;
      const html = await readFile(path.join(src, 'index.html'), 'utf8');
      const problems = cspProblems(html);
      if (problems.length) {
        const text = `src/index.html breaks the Content-Security-Policy: ${problems.join('; ')}`;
        if (!watch) throw new Error(text);
        console.error(text);
        return;
      }
      await copyFile(path.join(src, 'index.html'), path.join(outDir, 'index.html'));
    });
  },
};

/** What `default-src 'self'` without 'unsafe-inline' would block, or any external URL. */
export function cspProblems(html) {
  const problems = [];
  if (/<script(?![^>]*\bsrc=)[^>]*>/i.test(html)) problems.push('inline <script>');
  if (/\sstyle\s*=/i.test(html)) problems.push('style= attribute');
  if (/<style[\s>]/i.test(html)) problems.push('<style> element');
  if (/\son[a-z]+\s*=/i.test(html)) problems.push('inline event handler');
  if (/\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i.test(html)) problems.push('external URL');
  return problems;
}

async function main() {
  if (!watch) {
    for (const name of OUTPUTS) await rm(path.join(outDir, name), { force: true });
  }
  await mkdir(outDir, { recursive: true });
  const jsCtx = await esbuild.context({ ...js, plugins: [htmlPlugin] });
  const cssCtx = await esbuild.context(css);
  const embedCtx = await esbuild.context(embed);
  if (watch) {
    await Promise.all([jsCtx.watch(), cssCtx.watch(), embedCtx.watch()]);
    // index.html is not part of the module graph: rebuild (and so copy it) when it changes.
    watchFile(path.join(src, 'index.html'), { interval: 500 }, () => {
      jsCtx.rebuild().catch((error) => console.error(error.message ?? error));
    });
    console.log(`watching src/, writing ${outDir} (reload the page after a change)`);
    return;
  }
  try {
    await Promise.all([jsCtx.rebuild(), cssCtx.rebuild(), embedCtx.rebuild()]);
  } finally {
    await Promise.all([jsCtx.dispose(), cssCtx.dispose(), embedCtx.dispose()]);
  }
  console.log(`built ${OUTPUTS.join(', ')} into ${outDir}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error.message ?? error);
    process.exit(1);
  });
}
