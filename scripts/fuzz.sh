#!/usr/bin/env bash
# Fuzzing (README.md; the last stage of scripts/test.sh): builds the libFuzzer targets of fuzz/
# with clang, everything under ASan + UBSan, in build/fuzz, then runs each target over its seed
# corpus (fuzz/corpus/NAME) for a fixed number of runs (a minute or two in all). Any crash,
# sanitizer report, leak or timeout fails the script; the input that caused it is saved as
# build/fuzz/crash-NAME-… (or leak-/timeout-). Once fixed, copy it into
# fuzz/corpus/NAME: every run then replays it.
#
#   scripts/fuzz.sh              configure, build and run every target
#   scripts/fuzz.sh --no-build   run what build/fuzz already holds
#   DAG_FUZZ_RUNS=N              mutations per target (default 100000; the HTTP target a tenth)
#   DAG_FUZZ_CXX=clang++         the compiler (default: clang++-14, or clang++)
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(cron duration template yaml conf url http)
runs=${DAG_FUZZ_RUNS:-100000}
tree=build/fuzz

if [[ "${1:-}" != "--no-build" ]]; then
  cxx=${DAG_FUZZ_CXX:-}
  if [[ -z "$cxx" ]]; then
    for c in clang++-14 /usr/lib/llvm-14/bin/clang++ clang++; do
      if command -v "$c" >/dev/null 2>&1; then cxx=$c; break; fi
    done
  fi
  [[ -n "$cxx" ]] || { echo "fuzz.sh: no clang++ found (scripts/install-deps.sh installs clang)" >&2; exit 1; }
  # Warnings are the gcc build's business (clang warns differently); this tree is for fuzzing.
  cmake -S . -B "$tree" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDAG_FUZZ=ON \
        -DDAG_BUILD_TESTS=OFF -DDAG_BUILD_RUNNER=OFF -DDAG_WARNINGS_AS_ERRORS=OFF
  cmake --build "$tree" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for t in "${targets[@]}"; do
  n=$runs
  [[ $t == http ]] && n=$((runs / 10))  # a loopback round trip and a database per input
  work="$tree/corpus-$t"  # new inputs go here; the seed corpus in the repository is only read
  mkdir -p "$work"
  echo "== fuzz $t: $n runs =="
  if ! "$tree/fuzz/fuzz_$t" -runs="$n" -max_total_time=60 -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
         -print_final_stats=1 -artifact_prefix="$tree/crash-$t-" "$work" "fuzz/corpus/$t"; then
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz.sh: failed: ${failed[*]} (inputs in $tree/crash-*)" >&2
  exit 1
fi
echo "fuzz.sh: every target ran $runs inputs (http $((runs / 10))) without a finding"
