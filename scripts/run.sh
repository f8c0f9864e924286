#!/usr/bin/env bash
# README's run command: installs what is missing, builds dagrun (-O2), validates the example DAGs
# in dags/ and starts the scheduler daemon on them with an embedded SQLite file (dagrun.db).
# Its web UI, /health, /metrics and /api/v1 are on http://127.0.0.1:8080/ (DAGRUN_LISTEN changes
# the address; `none` turns HTTP off). Stop it with Ctrl-C (SIGINT/SIGTERM let running tasks
# finish first).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DDAG_BUILD_TESTS=OFF
cmake --build build/release -j "$(nproc)"
dagrun=build/release/runner/dagrun
export DAGRUN_DAGS=dags DAGRUN_DB=sqlite:dagrun.db DAGRUN_LOGS=logs
"$dagrun" validate
"$dagrun" dags list
echo "web UI, /health, /metrics and /api/v1 on http://${DAGRUN_LISTEN:-127.0.0.1:8080}/"
exec "$dagrun" schedule --listen "${DAGRUN_LISTEN:-127.0.0.1:8080}"
