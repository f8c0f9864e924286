#!/usr/bin/env bash
# Builds dagrun's Debian packages (dagrun and dagrun-dev, cmake/dag_package.cmake) into OUT_DIR.
#   scripts/package.sh OUT_DIR [BUILD_DIR]
# BUILD_DIR (default build/release) is configured as a Release build without tests when it has no
# CMakeCache.txt yet; an already configured tree (the tests' own) is built and packaged as it is.
# The container image (deploy/container/Dockerfile) builds its package with this script, and a
# test runs it, so the image's build steps cannot rot unseen.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/package.sh OUT_DIR [BUILD_DIR]}
build=${2:-build/release}
if [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DDAG_BUILD_TESTS=OFF
fi
cmake --build "$build" -j "$(nproc)"
cpack -G DEB -B "$out" --config "$build/CPackConfig.cmake"
ls "$out"/dagrun_*.deb "$out"/dagrun-dev_*.deb
