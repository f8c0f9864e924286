#!/usr/bin/env bash
# README's run command: installs what is missing, builds dagrun (-O2) and runs it on the example
# DAGs in dags/: validates them, lists them and shows the runs the scheduler will create next.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DDAG_BUILD_TESTS=OFF
cmake --build build/release -j "$(nproc)"
dagrun=build/release/runner/dagrun
export DAGRUN_DAGS=dags
"$dagrun" validate
"$dagrun" dags list
for dag in $("$dagrun" dags list --json | sed -n 's/.*"dag_id": "\(.*\)".*/\1/p'); do
  echo
  echo "next runs of $dag:"
  "$dagrun" dags next "$dag" -n 3
done
