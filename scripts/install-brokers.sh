#!/usr/bin/env bash
# Installs the brokers the bus tests run edgepoll against (issue 14):
# redis-server (Redis 7, sharded pub/sub) and nats-server, from the Debian
# packages (redis-server 7.0, nats-server 2.9 on bookworm). Does nothing when
# both are already there. The packages' services are not started
# (policy-rc.d): the tests start their own copies on free loopback ports.
# Exits 0 when both binaries are usable afterwards, 2 otherwise.
set -euo pipefail

have_all() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && command -v nats-server >/dev/null 2>&1
}

if have_all; then exit 0; fi
# shellcheck source=scripts/apt-packages.sh
source "$(dirname "$0")/apt-packages.sh"
apt_packages install-brokers "redis-server (7 or later) and nats-server" redis-server redis-tools nats-server || exit 2
if have_all; then exit 0; fi
echo "install-brokers: redis-server or nats-server still missing" >&2
exit 2
