/**
 * scripts/install.js, npm's install step (issue 12: installing anywhere), run
 * directly against a copy of the package without build/ or prebuilds/: the
 * native engine is optional, so a machine that cannot get it still installs,
 * with one line saying why; only an explicit --build-from-source may fail.
 * The end-to-end version (npm pack, npm install, serve on net) is in
 * test/package.test.ts.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');
let work = '';
let pkg = '';
let emptyBin = '';

/** A directory of executables that each print their name to a marker file and exit with `code`. */
function fakeTools(dir: string, names: string[], code: number): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of names) {
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\necho ${name} >> "${path.join(dir, 'ran')}"\nexit ${code}\n`, { mode: 0o755 });
  }
  return dir;
}

function install(env: Record<string, string>, preload?: string) {
  const args = [...(preload ? ['--require', preload] : []), path.join(pkg, 'scripts', 'install.js')];
  const result = spawnSync(process.execPath, args, { cwd: pkg, env: { HOME: os.homedir(), ...env }, encoding: 'utf8', timeout: 30_000 });
  const lines = result.stderr.split('\n').filter((line) => line.includes('native engine is unavailable'));
  return { status: result.status, stderr: result.stderr, lines };
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'edgepoll-install-'));
  pkg = path.join(work, 'edgepoll');
  fs.mkdirSync(path.join(pkg, 'scripts'), { recursive: true });
  fs.copyFileSync(path.join(root, 'scripts', 'install.js'), path.join(pkg, 'scripts', 'install.js'));
  fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
  fs.mkdirSync(path.join(pkg, 'node_modules'));
  fs.symlinkSync(path.join(root, 'node_modules', 'node-gyp-build'), path.join(pkg, 'node_modules', 'node-gyp-build'));
  emptyBin = path.join(work, 'empty-bin');
  fs.mkdirSync(emptyBin);
  return () => fs.rmSync(work, { recursive: true, force: true });
});

describe('scripts/install.js', () => {
  it('Linux, no prebuild, no python/make/compiler: exits 0 with one line naming what is missing', () => {
    const { status, lines, stderr } = install({ PATH: emptyBin });
    expect(status, stderr).toBe(0);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/no prebuilt binary for linux-\w+ (glibc|musl), and no python3, make, a C\+\+ compiler \(g\+\+\) on PATH/);
    expect(lines[0]).toContain("engine 'auto' will use the node:net engine");
  });

  it('macOS and Windows: exits 0 without looking for node-gyp, python or make', () => {
    const tools = fakeTools(path.join(work, 'tools-darwin'), ['python3', 'make', 'g++', 'node-gyp'], 0);
    const preload = path.join(work, 'darwin.cjs');
    fs.writeFileSync(preload, "Object.defineProperty(process, 'platform', { value: process.env.FAKE_PLATFORM });\n");
    for (const platform of ['darwin', 'win32']) {
      const { status, lines } = install({ PATH: tools, FAKE_PLATFORM: platform, npm_config_node_gyp: path.join(tools, 'node-gyp') }, preload);
      expect(status).toBe(0);
      expect(lines).toEqual([expect.stringContaining(`it needs Linux (epoll); this is ${platform}`)]);
    }
    expect(fs.existsSync(path.join(tools, 'ran'))).toBe(false);
  });

  it('a prebuild that matches but does not load: says so, with the loader error', () => {
    const prebuilds = path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`);
    fs.mkdirSync(prebuilds, { recursive: true });
    fs.writeFileSync(path.join(prebuilds, 'edgepoll.glibc.node'), 'not an ELF file');
    fs.writeFileSync(path.join(prebuilds, 'edgepoll.musl.node'), 'not an ELF file');
    try {
      const { status, lines } = install({ PATH: emptyBin });
      expect(status).toBe(0);
      expect(lines).toEqual([expect.stringMatching(/the prebuilt binary does not load here \(.*edgepoll\.(glibc|musl)\.node.*\), and no python3/)]);
    } finally {
      fs.rmSync(path.join(pkg, 'prebuilds'), { recursive: true, force: true });
    }
  });

  it('PREBUILDS_ONLY=1: no compile, one line', () => {
    const { status, lines } = install({ PATH: emptyBin, PREBUILDS_ONLY: '1' });
    expect(status).toBe(0);
    expect(lines).toEqual([expect.stringContaining('PREBUILDS_ONLY is set')]);
  });

  it('a toolchain whose compile fails: exits 0 with one line pointing at the kept log', () => {
    const tools = fakeTools(path.join(work, 'tools-failing'), ['python3', 'make', 'g++'], 1);
    const gyp = path.join(tools, 'node-gyp.js');
    fs.writeFileSync(gyp, "console.error('gyp ERR! the compile broke'); process.exit(1);\n");
    const { status, lines, stderr } = install({ PATH: tools, npm_config_node_gyp: gyp });
    expect(status, stderr).toBe(0);
    expect(lines).toHaveLength(1);
    expect(stderr).not.toContain('gyp ERR!');
    const log = /node-gyp's output: ([^\s)]+)\)/.exec(lines[0]!)?.[1];
    expect(lines[0]).toContain('compiling one failed (exit 1');
    expect(fs.readFileSync(log!, 'utf8')).toContain('gyp ERR! the compile broke');
    fs.rmSync(log!);
  });

  it('--build-from-source is a request: its failed compile fails the install, with node-gyp output shown', () => {
    const gyp = path.join(work, 'node-gyp-fails.js');
    fs.writeFileSync(gyp, "console.error('gyp ERR! asked for and broken'); process.exit(3);\n");
    const { status, stderr, lines } = install({ PATH: emptyBin, npm_config_node_gyp: gyp, npm_config_build_from_source: 'true' });
    expect(status).toBe(3);
    expect(stderr).toContain('gyp ERR! asked for and broken');
    expect(lines).toEqual([]);
  });
});
