#!/usr/bin/env bash
# Installs the load balancers test/proxy/proxy.haproxy.test.ts runs in front of
# edgepoll (docs/reliability.md T41): HAProxy and nginx with its stream module,
# from the Debian packages (haproxy 2.6, nginx 1.22 on bookworm). Does nothing
# when both are already there. The packages' services are not started
# (policy-rc.d), the tests run their own foreground copies on loopback.
# Exits 0 when both binaries are usable afterwards, 2 otherwise.
set -euo pipefail

have_all() {
  command -v haproxy >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1 &&
    ls /usr/lib/nginx/modules/ngx_stream_module.so >/dev/null 2>&1
}

if have_all; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-proxies: no apt-get here; install haproxy and nginx (with the stream module) yourself" >&2
  exit 2
fi
sudo_cmd=""
if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo -n"; fi

# Keep the packages from starting system services (nginx would take port 80).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee "$policy" >/dev/null
  $sudo_cmd chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then $sudo_cmd rm -f "$policy"; fi; }
trap cleanup EXIT

echo "install-proxies: installing haproxy and nginx (apt-get)" >&2
$sudo_cmd apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
  haproxy nginx libnginx-mod-stream >&2
if have_all; then exit 0; fi
echo "install-proxies: haproxy or nginx (stream module) still missing" >&2
exit 2
