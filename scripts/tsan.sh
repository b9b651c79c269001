#!/usr/bin/env bash
# ThreadSanitizer over the native core without Node (issue 8, RELIABILITY.md
# T27/T28/T31/T36): builds native/test/tsan_harness.cc and
# native/test/sigpipe_test.cc with the core's Node-free sources
# (-fsanitize=thread) into a temporary directory (never build/) and runs them.
# Exits non-zero on any TSan report, failed check or hang.
#
# Environment: HARNESS_SCALE (default 1: round lengths and count of quick
# start/stop rounds), TSAN_OUT (default a new temporary directory).
# Needs clang with its sanitizer runtimes; on Debian installs them with apt-get.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${TSAN_OUT:-$(mktemp -d /tmp/edgepoll-tsan.XXXXXX)}"
mkdir -p "$out"
# shellcheck source=native/test/clang-setup.sh
source "$root/native/test/clang-setup.sh"
cxx="$(ensure_clang thread "$out")"

# The Node-free part of the core: every native/*.cc that does not use Node-API
# (addon, bridge, engine and probe do).
core=()
for file in "$root"/native/*.cc; do
  grep -qE '#include [<"](napi|node_api|bridge|engine)\.h' "$file" || core+=("$file")
done
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=thread -pthread -I"$root/native")

for program in tsan_harness sigpipe_test; do
  echo "tsan: building $program" >&2
  "$cxx" "${flags[@]}" "$root/native/test/$program.cc" "${core[@]}" -o "$out/$program"
done

status=0
# tsan_harness@tiny: the harness again with every native bound shrunk
# (EDGEPOLL_DEBUG_TINY_BOUNDS=1, native/loop.h LoopBounds::tiny): full rings
# and refused submits all the time.
for run in sigpipe_test tsan_harness tsan_harness@tiny; do
  program="${run%@tiny}"
  tiny=0
  [ "$run" != "$program" ] && tiny=1
  log="$out/${run/@/-}.log"
  echo "tsan: running $run (log $log)" >&2
  if EDGEPOLL_DEBUG_TINY_BOUNDS="$tiny" TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    timeout 480 "$out/$program" >"$log" 2>&1 && ! grep -q 'WARNING: ThreadSanitizer' "$log"; then
    grep -v '^tsan harness: quick stop' "$log"
  else
    status=1
    echo "tsan: $run FAILED; last lines of $log:" >&2
    tail -80 "$log" >&2
  fi
done
exit "$status"
