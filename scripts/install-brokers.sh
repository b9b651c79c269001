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
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-brokers: no apt-get here; install redis-server (7 or later) and nats-server yourself" >&2
  exit 2
fi
sudo_cmd=""
if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo -n"; fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee "$policy" >/dev/null
  $sudo_cmd chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then $sudo_cmd rm -f "$policy"; fi; }
trap cleanup EXIT

echo "install-brokers: installing redis-server and nats-server (apt-get)" >&2
$sudo_cmd apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends redis-server redis-tools nats-server >&2
if have_all; then exit 0; fi
echo "install-brokers: redis-server or nats-server still missing" >&2
exit 2
