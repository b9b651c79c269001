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
# shellcheck source=scripts/apt-packages.sh
source "$(dirname "$0")/apt-packages.sh"
apt_packages install-proxies "haproxy and nginx (with the stream module)" haproxy nginx libnginx-mod-stream || exit 2
if have_all; then exit 0; fi
echo "install-proxies: haproxy or nginx (stream module) still missing" >&2
exit 2
