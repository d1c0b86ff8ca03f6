#!/usr/bin/env bash
# Debian's chromium for the web demo's browser test (tests/test_web_demo.py drives it with Playwright; nothing
# downloads a browser of its own). Idempotent: nothing to do when /usr/bin/chromium exists. Needs apt-get and
# root (as CI has); elsewhere it says how to install chromium, or to skip that test with FACEGAN_NO_BROWSER=1.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "[setup] no /usr/bin/chromium and no root apt-get to install it: install Debian's chromium package," \
       "or set FACEGAN_NO_BROWSER=1 to skip the browser test" >&2
  exit 0
fi
echo "[setup] installing Debian's chromium for the browser test"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "[setup] $(/usr/bin/chromium --version 2>/dev/null | head -1)"
