#!/usr/bin/env bash
# Make sure `promtool` (Prometheus' rule checker and rule unit-test runner) is on the PATH, for
# tests/deploy/test_prometheus_rules.py. Installed from Debian's `prometheus` package if missing
# and we can (root, or sudo without a password); quiet when it is already there. Only the tool
# is wanted: the package's server is never started here (policy-rc.d keeps dpkg from starting it).
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool is missing and apt-get is not available: install Prometheus' promtool." >&2
  exit 1
fi

if [ "$(id -u)" = "0" ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "promtool is missing and cannot be installed here (needs apt-get as root or sudo)." >&2
  echo "Install Debian's prometheus package (it ships promtool)." >&2
  exit 1
fi

echo "promtool is not installed: installing Debian's prometheus package…"
# A policy-rc.d that refuses (exit 101) stops the package's post-install from starting a
# Prometheus server on this machine; only promtool is needed. Removed again afterwards unless
# one was already there.
policy=/usr/sbin/policy-rc.d
made_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  made_policy=true
fi
cleanup() { if $made_policy; then "${as_root[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  prometheus >/dev/null

if ! command -v promtool >/dev/null 2>&1; then
  echo "The prometheus package installed, but promtool is still not on the PATH." >&2
  exit 1
fi
echo "promtool is installed: $(promtool --version 2>&1 | head -n 1)"
