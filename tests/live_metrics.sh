#!/usr/bin/env bash
# ctest: a real scheduler's /metrics answer passes `promtool check metrics` (Prometheus' own lint).
#   live_metrics.sh DAGRUN SCRATCH
set -euo pipefail
dagrun=$1 scratch=$2
rm -rf "$scratch"
mkdir -p "$scratch/dags"
printf 'dag_id: hello\nschedule: "@daily"\nstart_date: 2024-01-01\ncatchup: false\ntasks:\n  - task_id: greet\n    operator: bash\n    bash_command: echo hi\n' \
  > "$scratch/dags/hello.yaml"
"$dagrun" schedule --dags "$scratch/dags" --db "sqlite:$scratch/dagrun.db" --logs "$scratch/logs" \
  --listen 127.0.0.1:0 > "$scratch/daemon.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
# The daemon logs its port once it listens: wait for that line, 20 s at most.
port=""
for _ in $(seq 200); do
  port=$(grep -o 'serving HTTP on 127.0.0.1:[0-9]*' "$scratch/daemon.log" | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  kill -0 $daemon 2>/dev/null || { cat "$scratch/daemon.log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "the daemon did not start listening"; cat "$scratch/daemon.log"; exit 1; }
curl -sf "http://127.0.0.1:$port/metrics" > "$scratch/metrics.txt"
grep -q '^dagrun_scheduler_heartbeat ' "$scratch/metrics.txt" || { echo "no heartbeat in /metrics"; exit 1; }
promtool check metrics < "$scratch/metrics.txt"
echo "promtool check metrics: clean"
