#!/usr/bin/env bash
# Installs the npm packages the Node.js tests use, at the versions their package-lock.json pins,
# into each folder's node_modules (git-ignored):
#   tests/browser  playwright-core, which drives Debian's chromium (ctest Browser.*)
#   tests/openapi  swagger-parser, which validates the served OpenAPI document (ctest Api.OpenApi…)
# A folder whose lock file is what was last installed there is left alone.
set -euo pipefail
cd "$(dirname "$0")/../tests"
for folder in browser openapi; do
  stamp=$folder/node_modules/.dagrun-installed-lock.json
  cmp -s "$folder/package-lock.json" "$stamp" 2>/dev/null && continue
  command -v npm >/dev/null || { echo "npm is missing: install Debian's nodejs and npm (scripts/install-deps.sh)" >&2; exit 1; }
  echo "installing the npm packages of tests/$folder"
  (cd "$folder" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$folder/package-lock.json" "$stamp"
done
