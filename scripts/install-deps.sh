#!/usr/bin/env bash
# Installs the Debian packages dagrun builds and tests with, only those that are missing.
set -euo pipefail
packages=(
  cmake ninja-build g++ pkg-config git tzdata
  libboost-dev libboost-program-options-dev
  libsqlitecpp-dev libsqlite3-dev libpqxx-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev doctest-dev nlohmann-json3-dev
  libhowardhinnant-date-dev libssl-dev
  postgresql postgresql-client
  clang-14 libclang-rt-14-dev
)
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
