#!/usr/bin/env bash
# Installs the Debian packages dagrun builds and tests with, only those that are missing.
set -euo pipefail
packages=(
  cmake ninja-build g++ pkg-config git tzdata
  libboost-dev libboost-program-options-dev
  libsqlitecpp-dev libsqlite3-dev libpqxx-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev doctest-dev nlohmann-json3-dev
  libhowardhinnant-date-dev libssl-dev libcurl4-openssl-dev openssl
  libgoogle-perftools-dev  # tcmalloc, dagrun's allocator (DAG_TCMALLOC)
  postgresql postgresql-client
  curl libcurl4-openssl-dev
  prometheus prometheus-alertmanager
  python3 python3-jsonschema python3-yaml
  fish zsh  # the completion tests load the scripts in these shells
  clang-14 libclang-rt-14-dev
)
# The browser tests' Chromium and Node.js, unless DAGRUN_NO_BROWSER_TESTS=1 (the image's build stage).
[ "${DAGRUN_NO_BROWSER_TESTS:-0}" = 1 ] || packages+=(chromium nodejs)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ "${DAGRUN_NO_BROWSER_TESTS:-0}" = 1 ] && exit 0
# npm: Debian's, unless a nodejs that brings its own (NodeSource's) is installed.
if ! command -v npm >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm
fi
# The Node.js tests' npm packages (playwright-core, swagger-parser), into git-ignored folders.
"$(dirname "$0")/npm-deps.sh"
