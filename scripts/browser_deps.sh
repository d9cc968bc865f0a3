#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the widget test in the browser (tests/test_explore.py).
# Installs Debian's `chromium` and `chromium-driver` when /usr/bin/chromium or /usr/bin/chromedriver is missing;
# needs root (or sudo) and apt-get. Exits 0 when both are there afterwards.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi
command -v apt-get >/dev/null || { echo "apt-get not found: install chromium and its chromedriver by hand" >&2; exit 2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else echo "not root and no password-less sudo: cannot apt-get install chromium" >&2; exit 2; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]
