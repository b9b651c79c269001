# Sourced by the scripts/install-*.sh scripts: installs Debian packages for a
# test suite without starting their services (policy-rc.d), since the tests
# run their own foreground copies on loopback ports.
#   apt_packages NAME "what, for the message" PACKAGE...
# Returns 2 when apt-get is missing (the caller says what to install by hand).

apt_packages() {
  local name="$1" what="$2"
  shift 2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: no apt-get here; install $what yourself" >&2
    return 2
  fi
  local sudo_cmd=""
  if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo -n"; fi
  local policy=/usr/sbin/policy-rc.d made_policy=0 status=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee "$policy" >/dev/null
    $sudo_cmd chmod 755 "$policy"
    made_policy=1
  fi
  echo "$name: installing $what (apt-get)" >&2
  { $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "$@"; } >&2 || status=$?
  if [ "$made_policy" = 1 ]; then $sudo_cmd rm -f "$policy"; fi
  return "$status"
}
