#!/usr/bin/env bash
# Make sure headless Chromium and its WebDriver are there for the browser test
# (tests/e2e/test_browser_*.py). Installed from Debian's packages (chromium, chromium-driver) when
# missing and we can (apt-get as root); otherwise a clear message and exit 0: the browser test
# then skips itself, naming the reason, and the rest of the suite runs as usual.
set -uo pipefail

have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

if have; then
  echo "Chromium is there: $(chromium --version 2>/dev/null | head -n1)"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "Chromium is not installed: installing chromium and chromium-driver from Debian's packages…"
  if DEBIAN_FRONTEND=noninteractive apt-get update -qq \
     && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
          chromium chromium-driver >/dev/null; then
    if have; then
      echo "Chromium is there: $(chromium --version 2>/dev/null | head -n1)"
      exit 0
    fi
  fi
  echo "Chromium could not be installed; the browser test will be skipped." >&2
  exit 0
fi
echo "Chromium is not installed and cannot be installed here (needs apt-get as root);" \
     "the browser test will be skipped. Install chromium and chromium-driver to run it." >&2
exit 0
