#!/usr/bin/env bash
# README's test command: installs what is missing, builds with warnings as errors (the
# benchmarks too), runs every test through ctest, then builds again with AddressSanitizer + UndefinedBehaviorSanitizer and
# runs every test again, then fuzzes every parser (scripts/fuzz.sh). Build trees: build/test,
# build/asan and build/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
# The three build trees take about 20 GB (build/asan alone 14 GB); a full disk shows as a compiler's "No space left on
# device" deep in a build, so say the free space first.
free_gb=$(df -Pk . | awk 'NR == 2 { print int($4 / 1048576) }')
echo "free disk space here: ${free_gb} GB"
[ "$free_gb" -ge 25 ] || echo "warning: the build trees (build/test, build/asan, build/fuzz) need about 20 GB" >&2

# A throwaway PostgreSQL on loopback for the Postgres tests; stopped however this script ends.
pg_dir=$(mktemp -d /tmp/dagrun-pg.XXXXXX)
pg_port=${DAGRUN_TEST_PG_PORT:-54329}
trap './scripts/test-postgres.sh stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
export DAGRUN_TEST_POSTGRES_URL=$(./scripts/test-postgres.sh start "$pg_dir" "$pg_port")
echo "PostgreSQL for tests: $DAGRUN_TEST_POSTGRES_URL"

echo "== build (warnings as errors) =="
# The benchmarks are built too (a few programs, not run), so a change that breaks them fails here.
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDAG_BUILD_TESTS=ON -DDAG_BUILD_BENCHMARKS=ON
cmake --build build/test -j "$jobs"
echo "== tests =="
ctest --test-dir build/test --output-on-failure -j "$jobs"

echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer) =="
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDAG_BUILD_TESTS=ON -DDAG_SANITIZE=ON
cmake --build build/asan -j "$jobs"
echo "== tests under sanitizers =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
  ctest --test-dir build/asan --output-on-failure -j "$jobs"

echo "== fuzzing (libFuzzer with clang, ASan + UBSan; scripts/fuzz.sh) =="
./scripts/fuzz.sh
