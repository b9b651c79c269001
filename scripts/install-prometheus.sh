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
# shellcheck source=scripts/apt-packages.sh
source "$(dirname "$0")/apt-packages.sh"
apt_packages install-prometheus "prometheus (with promtool)" prometheus || exit 2
if have_all; then exit 0; fi
echo "install-prometheus: prometheus or promtool still missing" >&2
exit 2
