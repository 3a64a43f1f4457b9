#!/usr/bin/env bash
# Make sure nginx is installed: the one origin in front of `make run`'s service processes
# (scripts/run_local.py writes its configuration from deploy/nginx.conf). Installed from Debian's
# packages (nginx-light) when missing and we can; otherwise a clear message and a non-zero exit.
# It is not started here: supervisord runs it in the foreground with the services.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "nginx is not installed: installing nginx-light from Debian's packages…"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
  # Debian's package may start a system-wide nginx on port 80; the local run needs none.
  if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
  exit 0
fi
echo "nginx is not installed and cannot be installed here (needs apt-get as root)." >&2
echo "Install nginx (Debian: nginx-light), then run make run again." >&2
exit 1
