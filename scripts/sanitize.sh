#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer over the native addon (issue 8,
# docs/reliability.md T31/T36/T37). Never touches build/ (other work uses it):
#  1. copies the package (sources, tests, binding.gyp; node_modules linked)
#     into a work directory and builds the addon there with clang
#     -fsanitize=address,undefined (the copy's binding.gyp gets the flags), so
#     node-gyp-build in that copy (src/engines/native/binding.ts, the test fixtures) loads the
#     sanitized build/Release and nothing else;
#  2. runs the native-engine tests (engine, exit/teardown in forked children
#     and worker_threads, server protocol and lifecycle) in that copy, with
#     the ASan runtime preloaded into node; then process.exit(0) under
#     traffic, EXIT_REPEATS times (2b); then (2c) the native suites again
#     with EDGEPOLL_DEBUG_TINY_BOUNDS=1 (every native bound shrunk);
#  3. the exit/teardown fixtures (process.exit, GC, worker.terminate) and T36
#     (close under load, repeated, in one process, which must exit by itself)
#     with LeakSanitizer on: leaks allocated by our code fail the run;
#  4. the Node-free harnesses (native/test/) built with ASan+UBSan+LSan, the
#     tsan harness twice (default and tiny bounds).
# (The vitest run has detect_leaks=0: its worker processes end with
# process.exit, where Node and V8 leak by design.)
# Any sanitizer report (every process writes them to $out/reports/), failed
# test or hang exits non-zero.
#
# Environment: SANITIZE_OUT (default a new temporary directory),
# SANITIZE_TESTS (vitest files, default below), SANITIZE_TINY_TESTS (the
# files of the tiny-bounds pass), CLOSE_ITERATIONS (default 100),
# CLOSE_CLIENTS (default 50), EXIT_REPEATS (default 100: process.exit under load).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${SANITIZE_OUT:-$(mktemp -d /tmp/edgepoll-sanitize.XXXXXX)}"
work="$out/package"
reports="$out/reports"
mkdir -p "$out" "$reports"
# shellcheck source=native/test/clang-setup.sh
source "$root/native/test/clang-setup.sh"
cxx="$(ensure_clang address,undefined "$out")"
cc="${cxx/clang++/clang}"
runtime="$("$cxx" -print-file-name=libclang_rt.asan-x86_64.so)"
[ -f "$runtime" ] || { echo "sanitize: no shared ASan runtime at $runtime" >&2; exit 2; }

sanitize_flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"

# --- 1. the sanitized addon, in a copy of the package ----------------------
echo "sanitize: copying the package to $work" >&2
rm -rf "$work"
mkdir -p "$work"
tar -C "$root" --exclude=./build --exclude=./node_modules --exclude=./.git --exclude=./prebuilds \
  --exclude=./dist -cf - . | tar -C "$work" -xf -
ln -s "$root/node_modules" "$work/node_modules"
node - "$work/binding.gyp" "$sanitize_flags" <<'EOF'
// Adds the sanitizer flags to the copy's binding.gyp (JSON-compatible) and
// drops -O2 so reports point at the right lines.
const fs = require('node:fs');
const [file, flags] = process.argv.slice(2);
const gyp = JSON.parse(fs.readFileSync(file, 'utf8'));
const extra = flags.split(' ');
const patch = (target) => {
  for (const key of ['cflags', 'cflags_cc']) {
    target[key] = (target[key] || []).filter((flag) => flag !== '-O2').concat(extra);
  }
  target.ldflags = (target.ldflags || []).concat(['-fsanitize=address,undefined', '-shared-libasan']);
};
for (const target of gyp.targets) {
  for (const condition of target.conditions || []) {
    if (condition[0] === "OS=='linux'") patch(condition[1]);
  }
}
fs.writeFileSync(file, JSON.stringify(gyp, null, 2));
EOF
echo "sanitize: building the addon with $cxx (-fsanitize=address,undefined)" >&2
(cd "$work" && CC="$cc" CXX="$cxx" LINK="$cxx" npx node-gyp rebuild -j 2 >"$out/node-gyp.log" 2>&1) || {
  tail -40 "$out/node-gyp.log" >&2
  echo "sanitize: the sanitized build failed (log $out/node-gyp.log)" >&2
  exit 1
}
addon="$work/build/Release/edgepoll.node"
if [ "$(nm -D "$addon" | grep -c __asan_)" = 0 ]; then  # not grep -q: pipefail + SIGPIPE
  echo "sanitize: $addon is not instrumented" >&2
  exit 1
fi
echo "sanitize: compiling TypeScript in the copy" >&2
# Type errors are the typecheck's business, not this script's: tsc still
# emits JavaScript, and that is what the fixtures need.
if ! (cd "$work" && node scripts/build-ts.js >"$out/build-ts.log" 2>&1); then
  echo "sanitize: warning: the TypeScript build reported errors (log $out/build-ts.log); using what tsc emitted" >&2
fi
[ -f "$work/dist/index.js" ] || { tail -20 "$out/build-ts.log" >&2; exit 1; }

# Node runs with the ASan runtime preloaded (asan_node below); every process
# it starts (vitest's forks, forked fixtures) inherits that. Shell tools are
# not preloaded. Reports go to files as well as stderr, so a child whose
# stderr nobody checks still fails the run.
asan_node=(env LD_PRELOAD="$runtime")
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=66:handle_segv=0:allow_user_segv_handler=1:detect_stack_use_after_return=0:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"

status=0
check_reports() {
  # ASan writes log_path.<pid> only when it has something to say; reports.js
  # keeps every error and the leaks allocated by our code (see that file).
  if compgen -G "$reports/*" >/dev/null; then
    mkdir -p "$out/reports-$2"
    mv "$reports"/* "$out/reports-$2/"
    if ! env -u ASAN_OPTIONS -u UBSAN_OPTIONS node "$root/test/helpers/sanitize-fixtures/reports.js" "$(command -v node)" "$out/reports-$2"/* >&2; then
      echo "sanitize: sanitizer report(s) after $1 (kept in $out/reports-$2)" >&2
      status=1
    fi
  fi
}

# The loaded addon really is the sanitized one.
loaded="$(cd "$work" && "${asan_node[@]}" node -e "
  require('./dist/engines/native/binding.js').tryLoadNative();
  const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
  console.log(maps.split('\n').filter((l) => l.includes('edgepoll.node')).map((l) => l.split(/\s+/).pop())[0] || 'none');
")"
if [ "$loaded" != "$addon" ]; then
  echo "sanitize: src/engines/native/binding.ts loaded '$loaded', not $addon" >&2
  exit 1
fi

# --- 2. the native-engine tests ----------------------------------------------
tests="${SANITIZE_TESTS:-test/engines/native/engine.native.test.ts test/engines/native/engine.native.exit.test.ts test/server/server.protocol.test.ts test/server/server.lifecycle.test.ts}"
echo "sanitize: vitest $tests" >&2
# shellcheck disable=SC2086
if ! (cd "$work" && timeout 300 "${asan_node[@]}" npx vitest run $tests --testTimeout=60000 --hookTimeout=60000 \
  >"$out/vitest.log" 2>&1); then
  status=1
  echo "sanitize: tests FAILED under ASan; last lines of $out/vitest.log:" >&2
  tail -60 "$out/vitest.log" >&2
else
  grep -E 'Test Files|Tests ' "$out/vitest.log" | sed 's/^/sanitize: /' || true
fi
check_reports "the tests" vitest

# --- 2b. process.exit() with the loop threads busy (issue 11, T37) -----------
# Node runs no cleanup hook on process.exit(): the loops must be stopped (or
# harmless) while the process tears down. Leak detection stays off here: an
# engine nobody stopped is never freed, by design of process.exit.
repeats="${EXIT_REPEATS:-100}"
echo "sanitize: process.exit(0) with 1,000 connections under traffic, $repeats times" >&2
exit_failures=0
for ((i = 1; i <= repeats; i++)); do
  code=0
  timeout 60 "${asan_node[@]}" node "$work/test/helpers/native-fixtures/exit-under-load.js" \
    >"$out/exit-under-load.log" 2>&1 || code=$?
  if [ "$code" != 0 ] || ! grep -q '^exiting with 1000 connections' "$out/exit-under-load.log" \
    || [ "$(grep -vc '^exiting with' "$out/exit-under-load.log")" != 0 ]; then
    exit_failures=$((exit_failures + 1))
    echo "sanitize: exit-under-load run $i FAILED (exit $code):" >&2
    tail -20 "$out/exit-under-load.log" >&2
  fi
done
if [ "$exit_failures" = 0 ]; then echo "sanitize: exit-under-load: $repeats runs, all exit 0, no output"; else status=1; fi
check_reports "exit under load" exit-under-load

# --- 2c. again with every native bound shrunk (issue 11 item 5, T50) --------
# EDGEPOLL_DEBUG_TINY_BOUNDS=1: batch ring of 2, 4 KiB read budget and window,
# 1 KiB read buffer, tiny inbox (native/loop.h LoopBounds::tiny), so every
# pause path (credit, budget, full ring, full inbox) runs under ASan.
tiny_tests="${SANITIZE_TINY_TESTS:-test/engines/native/engine.native.test.ts test/engines/native/engine.native.pause.test.ts test/server/server.protocol.test.ts test/server/server.lifecycle.test.ts}"
echo "sanitize: vitest $tiny_tests, with EDGEPOLL_DEBUG_TINY_BOUNDS=1" >&2
# shellcheck disable=SC2086
if ! (cd "$work" && EDGEPOLL_DEBUG_TINY_BOUNDS=1 timeout 600 "${asan_node[@]}" npx vitest run $tiny_tests \
  --testTimeout=60000 --hookTimeout=60000 >"$out/vitest-tiny.log" 2>&1); then
  status=1
  echo "sanitize: tests FAILED under ASan with tiny bounds; last lines of $out/vitest-tiny.log:" >&2
  tail -60 "$out/vitest-tiny.log" >&2
else
  grep -E 'Test Files|Tests ' "$out/vitest-tiny.log" | sed 's/^/sanitize (tiny bounds): /' || true
fi
check_reports "the tests with tiny bounds" vitest-tiny

# --- 3. exit/teardown fixtures and T36, with leak detection -----------------
# These processes end by themselves, so LeakSanitizer runs at their exit.
# abort_on_error: an ASan error aborts (its exit code cannot be masked);
# exitcode=0: Node/V8's own leaks at exit do not change the exit code, and
# reports.js keeps only leaks our code allocated.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:exitcode=0:handle_segv=0:allow_user_segv_handler=1:detect_stack_use_after_return=0:log_path=$reports/asan"
# Each fixture with its own loop threads, then on the JS thread (threads: 0,
# EDGEPOLL_FIXTURE_THREADS in test/helpers/native-fixtures/load.js).
for threads in own 0; do
  for fixture in stop-exit.js process-exit.js worker.js gc.js; do
    file="$work/test/helpers/native-fixtures/$fixture"
    [ -f "$file" ] || continue
    extra=()
    [ "$fixture" = gc.js ] && extra=(--expose-gc)
    name="$fixture, threads $threads"
    log="$out/$fixture-$threads.log"
    if [ "$threads" = own ]; then unset EDGEPOLL_FIXTURE_THREADS; else export EDGEPOLL_FIXTURE_THREADS="$threads"; fi
    if timeout 120 "${asan_node[@]}" node "${extra[@]}" "$file" >"$log" 2>&1; then
      echo "sanitize: fixture $name: exit 0"
    else
      status=1
      echo "sanitize: fixture $name FAILED (exit $?):" >&2
      tail -20 "$log" >&2
    fi
    check_reports "fixture $name" "${fixture%.js}-$threads"
  done
done
unset EDGEPOLL_FIXTURE_THREADS

echo "sanitize: close under load (T36)" >&2
started=$(date +%s)
code=0
CLOSE_ITERATIONS="${CLOSE_ITERATIONS:-100}" timeout 300 \
  "${asan_node[@]}" node "$work/test/helpers/sanitize-fixtures/close-under-load.js" "$work" >"$out/close.log" 2>&1 || code=$?
if [ "$code" = 0 ] && grep -q '^close under load:' "$out/close.log" && ! grep -q 'no traffic' "$out/close.log"; then
  echo "sanitize: $(grep '^close under load:' "$out/close.log") ($(($(date +%s) - started)) s, exited by itself)"
else
  status=1
  [ "$code" = 124 ] && echo "sanitize: close under load did not exit by itself within 300 s" >&2
  echo "sanitize: close under load FAILED (exit $code):" >&2
  tail -40 "$out/close.log" >&2
fi
check_reports "close under load" close

# --- 4. Node-free harnesses with ASan + UBSan + LeakSanitizer ---------------------
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:exitcode=66:log_path=$reports/asan"
core=()
for file in "$root"/native/*.cc; do
  grep -qE '#include [<"](napi|node_api|bridge|engine)\.h' "$file" || core+=("$file")
done
# tsan_harness@tiny: the harness again with every native bound shrunk.
for run in sigpipe_test tsan_harness tsan_harness@tiny; do
  program="${run%@tiny}"
  tiny=0
  [ "$run" != "$program" ] && tiny=1
  name="${run/@/-}"
  echo "sanitize: $run (ASan + UBSan + LSan, no Node)" >&2
  if [ "$tiny" = 0 ]; then  # built once, run twice
    # shellcheck disable=SC2086
    "$cxx" -std=c++17 -pthread $sanitize_flags -I"$root/native" "$root/native/test/$program.cc" "${core[@]}" \
      -o "$out/$program"
  fi
  if EDGEPOLL_DEBUG_TINY_BOUNDS="$tiny" HARNESS_SCALE="${HARNESS_SCALE:-0.6}" timeout 300 "$out/$program" \
    >"$out/$name.log" 2>&1; then
    tail -1 "$out/$name.log" | sed "s/^/sanitize ($run): /"
  else
    status=1
    echo "sanitize: $run FAILED:" >&2
    tail -40 "$out/$name.log" >&2
  fi
  check_reports "$run" "$name"
done

if [ "$status" = 0 ]; then echo "sanitize: clean (work directory $out)"; fi
exit "$status"
