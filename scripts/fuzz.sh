#!/usr/bin/env bash
# Coverage-guided fuzzing of the native decoders (docs/reliability.md T13) and the
# PROXY header parser (T39/T40): builds native/fuzz/{frame,length,line,proxy}_fuzzer.cc with libFuzzer + ASan + UBSan and
# runs each for FUZZ_SECONDS over a copy of its seed corpus
# (test/fuzz/corpus/<target>/, which stays unchanged). Exits non-zero on any
# crash, sanitizer report or failed check; crash inputs are kept in
# $FUZZ_OUT/artifacts/ and named on standard error.
#
# Environment: FUZZ_SECONDS (default 20, per target), FUZZ_TARGETS (default
# "frame length line proxy"), FUZZ_OUT (default a new temporary directory).
# Needs clang with the libFuzzer runtime; on Debian installs it with apt-get.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-20}"
targets="${FUZZ_TARGETS:-frame length line proxy}"
out="${FUZZ_OUT:-$(mktemp -d /tmp/edgepoll-fuzz.XXXXXX)}"
mkdir -p "$out/artifacts"

find_clang() {
  for candidate in clang++ clang++-16 clang++-15 clang++-14; do
    if command -v "$candidate" >/dev/null 2>&1; then echo "$candidate"; return 0; fi
  done
  return 1
}

# True when $1 can link a libFuzzer program (clang alone is not enough on
# Debian: the runtime is in libclang-rt-<version>-dev).
can_link_fuzzer() {
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$out/probe.cc"
  "$1" -fsanitize=fuzzer "$out/probe.cc" -o "$out/probe" >/dev/null 2>&1
}

cxx="$(find_clang || true)"
if [ -z "$cxx" ] || ! can_link_fuzzer "$cxx"; then
  echo "fuzz: installing clang and the libFuzzer runtime (apt-get)" >&2
  sudo_cmd=""
  if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq clang >&2
  cxx="$(find_clang)"
  if ! can_link_fuzzer "$cxx"; then
    version="$("$cxx" --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)"
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "libclang-rt-${version}-dev" >&2
  fi
  can_link_fuzzer "$cxx" || { echo "fuzz: $cxx cannot link -fsanitize=fuzzer" >&2; exit 2; }
fi

flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
  -fno-sanitize-recover=undefined -I"$root/native")
status=0
for target in $targets; do
  binary="$out/${target}_fuzzer"
  echo "fuzz: building $target" >&2
  "$cxx" "${flags[@]}" "$root/native/fuzz/${target}_fuzzer.cc" "$root/native/codec.cc" "$root/native/proxy.cc" -o "$binary"
  corpus="$out/corpus/$target"
  mkdir -p "$corpus"
  cp -r "$root/test/fuzz/corpus/$target/." "$corpus/"
  log="$out/$target.log"
  echo "fuzz: running $target for ${seconds}s (log $log)" >&2
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$binary" "$corpus" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=1024 \
      -print_final_stats=1 -artifact_prefix="$out/artifacts/${target}-" >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)"
    echo "fuzz: $target clean: ${runs:-?} runs, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) inputs"
  else
    status=1
    echo "fuzz: $target FAILED; last lines of $log:" >&2
    tail -40 "$log" >&2
    ls "$out/artifacts" >&2 || true
  fi
done
exit "$status"
