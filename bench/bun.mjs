// Finds a Bun executable for the Bun.listen baseline (bench/baseline-bun.mjs),
// installing it on demand into a cache outside the project: Bun is never a
// dependency of edgepoll. Order: BENCH_BUN (a path, or 0 to skip Bun), `bun` on
// PATH, the cache (~/.cache/edgepoll-bench/bun, or under BENCH_CACHE), then
// `npm install --prefix <cache> @oven/bun-linux-x64` (the -baseline build on
// CPUs without AVX2). Owns: locating and installing Bun; runs in the bench process.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const cacheRoot = () => process.env.BENCH_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'edgepoll-bench');

function bunPackage() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  let avx2 = false;
  try {
    avx2 = /\bavx2\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    // unknown CPU: the baseline build runs everywhere
  }
  return avx2 ? '@oven/bun-linux-x64' : '@oven/bun-linux-x64-baseline';
}

/** The version `file --version` prints, or null when it does not run. */
function versionOf(file) {
  const run = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return run.status === 0 ? run.stdout.trim() : null;
}

/**
 * { path, version } of a working Bun, or { skipped: reason }.
 * `install: false` only looks (tests); the benchmark installs when needed.
 */
export function findBun({ install = true } = {}) {
  const chosen = process.env.BENCH_BUN;
  if (chosen === '0') return { skipped: 'BENCH_BUN=0' };
  if (chosen) {
    const version = versionOf(chosen);
    return version ? { path: chosen, version } : { skipped: `BENCH_BUN=${chosen} does not run` };
  }
  const onPath = versionOf('bun');
  if (onPath) return { path: 'bun', version: onPath };
  const pkg = bunPackage();
  if (!pkg) return { skipped: `no Bun package for ${process.platform}-${process.arch}` };
  const prefix = path.join(cacheRoot(), 'bun');
  const cached = path.join(prefix, 'node_modules', ...pkg.split('/'), 'bin', 'bun');
  let version = fs.existsSync(cached) ? versionOf(cached) : null;
  if (version) return { path: cached, version };
  if (!install) return { skipped: `Bun not on PATH nor in ${prefix}` };
  fs.mkdirSync(prefix, { recursive: true });
  process.stderr.write(`bench: installing ${pkg} into ${prefix} (not a project dependency)\n`);
  const npm = spawnSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', '--no-package-lock', pkg], {
    encoding: 'utf8',
    timeout: 300_000,
    cwd: prefix,
  });
  version = fs.existsSync(cached) ? versionOf(cached) : null;
  if (version) return { path: cached, version };
  const why = (npm.error?.message ?? npm.stderr ?? '').trim().split('\n').slice(-1)[0] || `npm exited with ${npm.status}`;
  return { skipped: `could not install ${pkg}: ${why}` };
}
