#!/usr/bin/env bash
# Install headless Chromium and chromedriver (Debian packages) for the overview page's browser test.
# Does nothing when /usr/bin/chromium and /usr/bin/chromedriver exist; otherwise installs them with
# apt-get when running as root. Any failure leaves the test to skip (or fail under .ci/run), so
# `make test` calls this script with its exit status ignored.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-browser: not root; install the Debian packages chromium and chromium-driver" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install-browser: no apt-get; install chromium and chromedriver by hand" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -qq update
apt-get install -y -qq --no-install-recommends chromium chromium-driver
/usr/bin/chromium --version 2>/dev/null
