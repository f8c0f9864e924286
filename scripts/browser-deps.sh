#!/usr/bin/env bash
# Installs what the browser tests (ctest Browser.*) drive Chromium with: playwright-core from npm,
# at the version tests/browser/package-lock.json pins, into tests/browser/node_modules (git-ignored).
# Chromium itself is Debian's `chromium` (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/../tests/browser"
if [ -f node_modules/playwright-core/package.json ] &&
   [ "$(node -p "require('./node_modules/playwright-core/package.json').version")" = \
     "$(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm is missing: install Debian's nodejs and npm (scripts/install-deps.sh)" >&2; exit 1; }
echo "installing playwright-core for the browser tests"
npm ci --no-audit --no-fund --loglevel=error
