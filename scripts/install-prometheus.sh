#!/usr/bin/env bash
# Installs Prometheus and promtool (Debian's `prometheus` package ships both)
# for test/prometheus/prometheus.test.ts: promtool checks the exposition of
# edgepoll/prometheus, a real Prometheus scrapes `edgepoll serve
# --metrics-port`. Does nothing when both are already there. The package's
# service is not started (policy-rc.d): the test runs its own foreground copy
# on loopback with a temporary data directory and config.
# Exits 0 when both binaries are usable afterwards, 2 otherwise.
set -euo pipefail

have_all() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }

if have_all; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-prometheus: no apt-get here; install prometheus (with promtool) yourself" >&2
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

echo "install-prometheus: installing prometheus (apt-get)" >&2
$sudo_cmd apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus >&2
if have_all; then exit 0; fi
echo "install-prometheus: prometheus or promtool still missing" >&2
exit 2
