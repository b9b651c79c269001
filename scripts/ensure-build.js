#!/usr/bin/env node
// `npm test` on a fresh clone: `npm install` already built the addon
// (node-gyp-build) and dist/ (prepare). This rebuilds whichever is missing or
// older than its sources, so a test run never exercises stale code.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
function newest(dir, exts) {
  let t = 0;
  if (!fs.existsSync(dir)) return t;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, exts));
    else if (exts.some((x) => e.name.endsWith(x))) t = Math.max(t, fs.statSync(p).mtimeMs);
  }
  return t;
}
function mtime(p) {
  return fs.existsSync(p) ? fs.statSync(p).mtimeMs : 0;
}
const npx = (args) => execFileSync('npx', args, { stdio: 'inherit', cwd: root });

if (process.platform === 'linux') {
  // Two addons: the engine, and the load generator (its own addon, bench only).
  const addons = [path.join(root, 'build', 'Release', 'edgepoll.node'), path.join(root, 'build', 'Release', 'edgepoll_loadgen.node')];
  const sources = Math.max(newest(path.join(root, 'native'), ['.cc', '.h']), mtime(path.join(root, 'binding.gyp')));
  if (Math.min(...addons.map(mtime)) < sources) {
    console.error('edgepoll: building the native addon (node-gyp)…');
    npx(['node-gyp', 'rebuild', '-j', '2']);
  }
}
if (mtime(path.join(root, 'dist', 'index.mjs')) < newest(path.join(root, 'src'), ['.ts'])) {
  console.error('edgepoll: compiling TypeScript…');
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build-ts.js')], { stdio: 'inherit', cwd: root });
}
