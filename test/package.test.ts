/**
 * The published package, end to end (issue 7): what `npm pack` ships, and
 * that the tarball installs into a fresh project and runs the native engine
 * from its prebuild with no compiler on PATH, or from source with
 * --build-from-source, from both `import` and `require`; that the types check
 * for .cts and .mts consumers; and (T47) that without a matching prebuild
 * `auto` falls back to net with one warning while `--engine native` fails with
 * node-gyp-build's reason and a hint. Issue 12: a tarball without prebuilds/
 * installs on a machine without a compiler, make or python (one line says the
 * native engine is unavailable and why) and serves on net; the engine addon
 * holds only the engine, the load generator is its own addon that bench loads.
 *
 * Slow (packs, installs from the npm registry, compiles once): runs only with
 * EDGEPOLL_PACKAGE_TESTS=1, which scripts/test-package.sh sets after building
 * the prebuild and dist/.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connectPeer, frame } from './helpers/wire';

const root = path.join(__dirname, '..');
const fixtures = path.join(__dirname, 'helpers', 'package-fixtures');
const enabled = process.env.EDGEPOLL_PACKAGE_TESTS === '1';
const slow = 240_000;
const prebuildDir = `${process.platform}-${process.arch}`;

/** This environment without npm's per-script variables (they would point the temp project's npm at this repo). */
function baseEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || key === 'INIT_CWD' || key === 'PREBUILDS_ONLY' || key === 'LIBC') continue;
    if (key === 'EDGEPOLL_FORCE_NO_NATIVE' || key === 'EDGEPOLL_ENGINE') continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function which(tool: string): string {
  return fs.realpathSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim());
}

/** A directory that holds only node, npm, npx and sh: PATH for "a machine without a compiler". */
function noCompilerBin(dir: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  for (const tool of ['node', 'npm', 'npx', 'sh']) fs.symlinkSync(which(tool), path.join(bin, tool));
  return bin;
}

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

/**
 * Runs a command to completion without blocking this worker's event loop
 * (spawnSync for a minute-long npm install starves vitest's own messages).
 */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeout = slow): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const result: RunResult = { status: null, stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (result.stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (result.stderr += chunk));
    const timer = setTimeout(() => {
      result.error = new Error(`${command} ${args.join(' ')} took over ${timeout} ms`);
      child.kill('SIGKILL');
    }, timeout);
    child.on('error', (error) => (result.error = error));
    child.on('close', (code) => {
      clearTimeout(timer);
      result.status = code;
      resolve(result);
    });
  });
}

function expectSuccess(result: RunResult): void {
  expect(result.error, String(result.error)).toBeUndefined();
  expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
}

/** A fresh consumer project with the tarball installed; returns its directory and npm's output. */
async function installInto(dir: string, tarball: string, flags: string[], env: NodeJS.ProcessEnv): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }));
  const result = await run('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', tarball, ...flags], dir, env);
  expectSuccess(result);
  for (const file of fs.readdirSync(fixtures)) fs.copyFileSync(path.join(fixtures, file), path.join(dir, file));
  return `${result.stdout}\n${result.stderr}`;
}

interface Probe {
  face: 'require' | 'import';
  engine: string;
  listened: boolean;
  addons: string[];
  loadError: string | null;
  sameInstance?: boolean;
}

async function probe(dir: string, script: string, env: NodeJS.ProcessEnv): Promise<{ result: Probe; stderr: string }> {
  const out = await run('node', [script], dir, env, 30_000);
  expectSuccess(out);
  return { result: JSON.parse(out.stdout.trim()) as Probe, stderr: out.stderr };
}

/** `npx edgepoll serve --port 0` in the consumer project, stopped when the test ends. */
async function startServe(dir: string, env: NodeJS.ProcessEnv): Promise<{ port: number; stderr: () => string }> {
  const child = spawn('npx', ['--no', 'edgepoll', 'serve', '--port', '0'], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  // npx runs the bin through a shell: signal the whole group.
  const kill = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  onTestFinished(async () => {
    kill('SIGTERM');
    const timer = setTimeout(() => kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 20_000);
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    void exited.then(() => reject(new Error(`serve exited before listening: ${stderr}`)));
  });
  return { port, stderr: () => stderr };
}

/** `npx edgepoll serve --port 0` in the consumer project; answers one ECHO, then stops. */
async function serveEcho(dir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const { port, stderr } = await startServe(dir, env);
  const peer = await connectPeer(port);
  const payload = 'hello from the package';
  // 12-byte header EB 00 00 01 <len u32> <seq u32>, then the payload.
  peer.write(frame(0, 1, 7, payload));
  const reply = await peer.readFrame();
  expect(reply).toMatchObject({ flags: 1, type: 1, seq: 7 });
  expect(reply.payload.toString()).toBe(payload);
  peer.destroy();
  return stderr();
}

function expectLoadedFrom(result: Probe, directory: string): void {
  expect(result.loadError).toBeNull();
  expect(result.engine).toBe('native');
  expect(result.listened).toBe(true);
  expect(result.addons).toHaveLength(1);
  expect(result.addons[0]!.startsWith(directory + path.sep)).toBe(true);
  expect(result.addons[0]!.endsWith('.node')).toBe(true);
}

describe.skipIf(!enabled)('npm package', () => {
  let work = '';
  let tarball = '';

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'edgepoll-package-'));
    // dist/ and prebuilds/ are made by scripts/test-package.sh; pack exactly them.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root, baseEnvironment({}));
    expectSuccess(pack);
    const packed = JSON.parse(pack.stdout) as Array<{ filename: string }>;
    tarball = path.join(work, packed[0]!.filename);
  }, slow);
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('packs dist, prebuilds, native sources, binding.gyp, README and LICENSE only', async () => {
    const dryRun = await run('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], root, baseEnvironment({}));
    expectSuccess(dryRun);
    const listing = JSON.parse(dryRun.stdout) as Array<{ files: Array<{ path: string }> }>;
    const files = listing[0]!.files.map((file) => file.path);
    const allowed = [
      /^dist\/[\w/.-]+\.(js|mjs|d\.ts|d\.mts)$/,
      new RegExp(`^prebuilds/${prebuildDir}/(loadgen/)?[\\w.+-]+\\.node$`),
      /^native\/(loadgen\/)?[\w-]+\.(cc|h)$/,
      /^(binding\.gyp|scripts\/install\.js|README\.md|LICENSE|package\.json|prometheus\/package\.json)$/,
    ];
    expect(files.filter((file) => !allowed.some((pattern) => pattern.test(file)))).toEqual([]);
    for (const required of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'dist/prometheus.js', 'dist/prometheus.mjs', 'dist/prometheus.d.ts', 'dist/prometheus.d.mts', 'dist/cli/main.js', 'binding.gyp', 'native/addon.cc', 'scripts/install.js', 'README.md', 'LICENSE']) {
      expect(files).toContain(required);
    }
    // One engine prebuild, and the load generator's in its own directory (node-gyp-build never picks it as the engine).
    expect(files.filter((file) => /^prebuilds\/[^/]+\/[^/]+$/.test(file))).toEqual([expect.stringMatching(new RegExp(`^prebuilds/${prebuildDir}/edgepoll\\.`))]);
    expect(files.filter((file) => file.startsWith(`prebuilds/${prebuildDir}/loadgen/`))).toEqual([expect.stringMatching(/\/edgepoll_loadgen\.[\w.+-]+\.node$/)]);
    // Every native/*.cc that binding.gyp compiles is shipped, so build-from-source works.
    for (const source of fs.readdirSync(path.join(root, 'native')).filter((file) => file.endsWith('.cc'))) {
      expect(files).toContain(`native/${source}`);
    }
  });

  describe('installed from the prebuild on a machine without a compiler', () => {
    let app = '';
    let installOutput = '';
    let env: NodeJS.ProcessEnv = {};

    beforeAll(async () => {
      const bin = noCompilerBin(path.join(work, 'no-compiler'));
      env = baseEnvironment({ PATH: bin, CC: 'false', CXX: 'false' });
      app = path.join(work, 'prebuilt');
      installOutput = await installInto(app, tarball, [], env);
    }, slow);

    it('has no compiler, make or python on PATH, and install compiles nothing', async () => {
      for (const tool of ['g++', 'gcc', 'cc', 'make', 'python3', 'python']) {
        expect((await run('sh', ['-c', `command -v ${tool}`], app, env)).status).not.toBe(0);
      }
      expect(installOutput).not.toMatch(/gyp (info|ERR)|No native build/);
      expect(fs.existsSync(path.join(app, 'node_modules', 'edgepoll', 'build'))).toBe(false);
    });

    it.each(['probe.cjs', 'probe.mjs'])('%s loads the native engine from prebuilds/ with PREBUILDS_ONLY=1', async (script) => {
      const { result, stderr } = await probe(app, script, { ...env, PREBUILDS_ONLY: '1' });
      expectLoadedFrom(result, path.join(fs.realpathSync(app), 'node_modules', 'edgepoll', 'prebuilds', prebuildDir));
      if (result.face === 'import') expect(result.sameInstance).toBe(true);
      expect(stderr).not.toContain('EDGEPOLL_NATIVE_UNAVAILABLE');
    });

    it('npx edgepoll serve --port 0 answers an ECHO on the native engine', async () => {
      const stderr = await serveEcho(app, { ...env, PREBUILDS_ONLY: '1' });
      expect(stderr).toContain('engine native');
    });

    it('issue 12: the engine prebuild holds only the engine; the load generator is its own prebuild', async () => {
      const prebuilds = path.join(app, 'node_modules', 'edgepoll', 'prebuilds', prebuildDir);
      const keys = async (file: string): Promise<string[]> => {
        const out = await run('node', ['-e', 'console.log(JSON.stringify(Object.keys(require(process.argv[1]))))', file], app, env, 30_000);
        expectSuccess(out);
        return JSON.parse(out.stdout) as string[];
      };
      const engine = fs.readdirSync(prebuilds).filter((file) => file.endsWith('.node'));
      expect(engine).toHaveLength(1);
      const engineKeys = await keys(path.join(prebuilds, engine[0]!));
      expect(engineKeys).toContain('Engine');
      expect(engineKeys).not.toContain('runLoad');
      const loadgen = fs.readdirSync(path.join(prebuilds, 'loadgen'));
      expect(loadgen).toHaveLength(1);
      expect(await keys(path.join(prebuilds, 'loadgen', loadgen[0]!))).toEqual(['runLoad']);
    });

    it('issue 12: npx edgepoll bench loads the load generator prebuild and measures a served port', async () => {
      const { port } = await startServe(app, { ...env, PREBUILDS_ONLY: '1' });
      const args = ['--no', 'edgepoll', 'bench', '--target', `127.0.0.1:${port}`, '--connections', '2', '--duration', '0.5', '--warmup', '0', '--json', '--quiet'];
      const out = await run('npx', args, app, { ...env, PREBUILDS_ONLY: '1' }, 60_000);
      expectSuccess(out);
      expect(JSON.parse(out.stdout)).toMatchObject({ errors: 0, mismatches: 0 });
      expect(JSON.parse(out.stdout).messages).toBeGreaterThan(0);
    });

    it('type-checks .cts and .mts consumers (tsc --noEmit, node16)', async () => {
      const config = JSON.parse(fs.readFileSync(path.join(app, 'tsconfig.json'), 'utf8'));
      config.compilerOptions.typeRoots = [path.join(root, 'node_modules', '@types')];
      fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(config));
      const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      expectSuccess(await run('node', [tsc, '-p', 'tsconfig.json'], app, env, 60_000));
    });

    // T47: the two ways a prebuild goes missing: another libc, or no prebuilds/ at all.
    const missing = [
      { name: 'LIBC=musl', setup: () => ({ LIBC: 'musl' }) },
      {
        name: 'prebuilds/ hidden',
        setup: () => {
          const shipped = path.join(app, 'node_modules', 'edgepoll', 'prebuilds');
          fs.renameSync(shipped, `${shipped}.hidden`);
          onTestFinished(() => fs.renameSync(`${shipped}.hidden`, shipped));
          return {};
        },
      },
    ];

    it.each(missing)('T47 ($name): auto falls back to net with one warning, from both faces', async ({ setup }) => {
      const extra = { ...setup(), PREBUILDS_ONLY: '1' };
      for (const script of ['probe.cjs', 'probe.mjs']) {
        const { result, stderr } = await probe(app, script, { ...env, ...extra });
        expect(result.engine).toBe('net');
        expect(result.listened).toBe(true);
        expect(result.addons).toEqual([]);
        expect(result.loadError).toContain('No native build was found');
        expect(stderr.match(/\[EDGEPOLL_NATIVE_UNAVAILABLE\]/g)).toHaveLength(1);
        expect(stderr).toContain('No native build was found');
      }
    });

    it.each(missing)('T47 ($name): serve --engine native exits non-zero with the reason and a hint', async ({ setup }) => {
      const extra = { ...setup(), PREBUILDS_ONLY: '1' };
      const out = await run('npx', ['--no', 'edgepoll', 'serve', '--port', '0', '--engine', 'native'], app, { ...env, ...extra }, 30_000);
      expect(out.error).toBeUndefined();
      expect(out.status).not.toBe(0);
      expect(out.stdout).not.toContain('listening on');
      expect(out.stderr).toContain('ENATIVE_UNAVAILABLE');
      expect(out.stderr).toContain('No native build was found');
      expect(out.stderr).toMatch(/hint: use --engine net/);
    });
  });

  // Issue 12: musl, arm64, anything without a matching prebuild, on a machine that cannot compile.
  describe('installed without a prebuild on a machine without a compiler, make or python', () => {
    let app = '';
    let installOutput = '';
    let env: NodeJS.ProcessEnv = {};

    beforeAll(async () => {
      // The same tarball with prebuilds/ taken out.
      const unpacked = path.join(work, 'unpacked');
      fs.mkdirSync(unpacked);
      execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
      fs.rmSync(path.join(unpacked, 'package', 'prebuilds'), { recursive: true, force: true });
      const stripped = path.join(work, 'edgepoll-no-prebuilds.tgz');
      execFileSync('tar', ['-czf', stripped, '-C', unpacked, 'package']);
      const bin = noCompilerBin(path.join(work, 'no-compiler-2'));
      env = baseEnvironment({ PATH: bin, CC: 'false', CXX: 'false' });
      app = path.join(work, 'no-prebuild');
      installOutput = await installInto(app, stripped, [], env);
    }, slow);

    it('npm install succeeds with one line saying the native engine is unavailable and why', () => {
      expect(fs.existsSync(path.join(app, 'node_modules', 'edgepoll', 'prebuilds'))).toBe(false);
      const lines = installOutput.split('\n').filter((line) => line.includes('native engine is unavailable'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/no prebuilt binary for linux-\w+ (glibc|musl), and no .*make.* on PATH to compile one/);
      expect(lines[0]).toContain("'auto' will use the node:net engine");
      expect(installOutput).not.toMatch(/gyp (info|ERR)/);
      expect(fs.existsSync(path.join(app, 'node_modules', 'edgepoll', 'build'))).toBe(false);
    });

    it.each(['probe.cjs', 'probe.mjs'])('%s: auto uses net', async (script) => {
      const { result, stderr } = await probe(app, script, env);
      expect(result.engine).toBe('net');
      expect(result.listened).toBe(true);
      expect(result.addons).toEqual([]);
      expect(stderr.match(/\[EDGEPOLL_NATIVE_UNAVAILABLE\]/g)).toHaveLength(1);
    });

    it('npx edgepoll serve --port 0 answers an ECHO on the net engine', async () => {
      const stderr = await serveEcho(app, env);
      expect(stderr).toContain('engine net');
    });
  });

  describe('installed with --build-from-source', () => {
    let app = '';
    let installOutput = '';
    let env: NodeJS.ProcessEnv = {};

    beforeAll(async () => {
      env = baseEnvironment({ JOBS: '2' });
      app = path.join(work, 'from-source');
      installOutput = await installInto(app, tarball, ['--build-from-source'], env);
    }, slow);

    it('compiles the addon with node-gyp, without compiler warnings', () => {
      expect(installOutput).toMatch(/gyp info ok/);
      expect(installOutput).not.toMatch(/warning:|error:/);
      expect(fs.existsSync(path.join(app, 'node_modules', 'edgepoll', 'build', 'Release'))).toBe(true);
    });

    it.each(['probe.cjs', 'probe.mjs'])('%s loads the native engine from build/Release', async (script) => {
      const { result } = await probe(app, script, env);
      expectLoadedFrom(result, path.join(fs.realpathSync(app), 'node_modules', 'edgepoll', 'build', 'Release'));
    });

    it('npx edgepoll serve --port 0 answers an ECHO on the native engine', async () => {
      const stderr = await serveEcho(app, env);
      expect(stderr).toContain('engine native');
    });
  });
});
