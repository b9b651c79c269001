#!/usr/bin/env node
// npm's install step for edgepoll (package.json "install"; shipped in the
// tarball). The native engine is optional: the `net` engine serves anywhere,
// so no outcome here fails `npm install` unless a compile was asked for
// (--build-from-source). In order:
//   - not Linux: nothing to build (no python, make or compiler is looked for);
//   - a prebuilt binary (or build/Release) that loads: done, silently;
//   - PREBUILDS_ONLY=1, or no python/make/C++ compiler on PATH: no compile;
//   - else node-gyp rebuild, its output kept in a log file.
// Whenever the native engine ends up unavailable it prints exactly one line
// saying so and why; engine 'auto' then uses `net` (src/engines/select.ts).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');

function unavailable(reason) {
  console.error(`edgepoll: the native engine is unavailable (${reason}); engine 'auto' will use the node:net engine`);
}

/** The first of `names` found on PATH (absolute names are checked as they are). */
function onPath(names) {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  for (const name of names) {
    if (!name) continue;
    const candidates = path.isAbsolute(name) ? [name] : dirs.map((dir) => path.join(dir, name));
    for (const file of candidates) {
      try {
        fs.accessSync(file, fs.constants.X_OK);
        if (fs.statSync(file).isFile()) return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** What node-gyp needs and is not here: python, make, a C++ compiler. */
function missingTools() {
  const missing = [];
  if (!onPath([process.env.PYTHON, process.env.npm_config_python, 'python3', 'python'])) missing.push('python3');
  if (!onPath(['make'])) missing.push('make');
  // make's default C++ compiler is g++; an explicit CXX is what node-gyp's Makefile runs.
  const cxx = process.env.CXX ? process.env.CXX.split(/\s+/)[0] : undefined;
  if (!onPath(cxx ? [cxx] : ['g++', 'c++', 'clang++'])) missing.push(cxx ? `the C++ compiler CXX=${cxx}` : 'a C++ compiler (g++)');
  return missing;
}

function target() {
  let libc = process.env.LIBC;
  if (!libc) libc = process.report?.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
  return `${process.platform}-${process.arch} ${libc}`;
}

/** node-gyp's entry: npm's bundled one (npm sets npm_config_node_gyp for scripts), else a local one. */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed next to us
  }
  const script = candidates.find((file) => file && fs.existsSync(file));
  if (script) return { command: process.execPath, args: [script, 'rebuild'] };
  const bin = onPath(['node-gyp']);
  return bin ? { command: bin, args: ['rebuild'] } : undefined;
}

function loadsHere() {
  try {
    const gypBuild = require('node-gyp-build');
    require(gypBuild.resolve(root));
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Why no native build loads: none matches here, or the one that matches fails to load (an older glibc, …). */
function whyNot(error) {
  const message = String((error && error.message) || error).split('\n')[0];
  return /No native build was found/.test(message) ? `no prebuilt binary for ${target()}` : `the prebuilt binary does not load here (${message})`;
}

function main() {
  if (process.platform !== 'linux') {
    unavailable(`it needs Linux (epoll); this is ${process.platform}`);
    return 0;
  }
  const fromSource = process.env.npm_config_build_from_source === 'true';
  let why = `no prebuilt binary for ${target()}`;
  if (!fromSource) {
    const loaded = loadsHere();
    if (loaded.ok) return 0;
    why = whyNot(loaded.error);
    if (process.env.PREBUILDS_ONLY) {
      unavailable(`${why}, and PREBUILDS_ONLY is set`);
      return 0;
    }
    const missing = missingTools();
    if (missing.length > 0) {
      unavailable(`${why}, and no ${missing.join(', ')} on PATH to compile one`);
      return 0;
    }
  }
  const gyp = nodeGyp();
  if (!gyp) {
    if (fromSource) {
      console.error('edgepoll: --build-from-source: node-gyp was not found');
      return 1;
    }
    unavailable(`${why}, and node-gyp was not found to compile one`);
    return 0;
  }
  if (fromSource) {
    // Asked for: the compile's output is the user's, and its failure is theirs too.
    const result = spawnSync(gyp.command, gyp.args, { cwd: root, stdio: 'inherit' });
    if (result.error) console.error(`edgepoll: node-gyp: ${result.error.message}`);
    return result.status ?? 1;
  }
  const log = path.join(os.tmpdir(), `edgepoll-build-${process.pid}.log`);
  const fd = fs.openSync(log, 'w');
  const result = spawnSync(gyp.command, gyp.args, { cwd: root, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  if (result.status === 0 && loadsHere().ok) {
    fs.rmSync(log, { force: true });
    return 0;
  }
  const how = result.error ? result.error.message : result.status === 0 ? 'the build does not load' : `exit ${result.status ?? result.signal}`;
  unavailable(`${why}, and compiling one failed (${how}; node-gyp's output: ${log})`);
  return 0;
}

process.exitCode = main();
