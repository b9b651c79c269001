# Sourced by scripts/tsan.sh and scripts/sanitize.sh: finds a clang++ that can
# link programs with a given sanitizer, installing clang and its runtimes from
# Debian packages (clang, libclang-rt-<version>-dev) when it cannot.
# Usage: cxx="$(ensure_clang address,undefined "$workdir")" — prints the
# compiler on stdout, progress on stderr; exits 2 when nothing works.

find_clang() {
  for candidate in clang++ clang++-16 clang++-15 clang++-14; do
    if command -v "$candidate" >/dev/null 2>&1; then echo "$candidate"; return 0; fi
  done
  return 1
}

# True when $1 links a threaded program with -fsanitize=$2.
can_link_sanitizer() {
  printf '#include <thread>\nint main() { std::thread t([] {}); t.join(); return 0; }\n' >"$3/probe.cc"
  "$1" -std=c++17 -pthread -fsanitize="$2" "$3/probe.cc" -o "$3/probe" >/dev/null 2>&1 && "$3/probe" >/dev/null 2>&1
}

ensure_clang() {
  local sanitizer="$1" workdir="$2" cxx sudo_cmd="" version
  cxx="$(find_clang || true)"
  if [ -n "$cxx" ] && can_link_sanitizer "$cxx" "$sanitizer" "$workdir"; then echo "$cxx"; return 0; fi
  echo "installing clang and its sanitizer runtimes (apt-get)" >&2
  if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq clang >&2
  cxx="$(find_clang)"
  if ! can_link_sanitizer "$cxx" "$sanitizer" "$workdir"; then
    version="$("$cxx" --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)"
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "libclang-rt-${version}-dev" >&2
  fi
  if ! can_link_sanitizer "$cxx" "$sanitizer" "$workdir"; then
    echo "$cxx cannot link -fsanitize=$sanitizer" >&2
    exit 2
  fi
  echo "$cxx"
}
