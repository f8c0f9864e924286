#!/usr/bin/env bash
# dagrun's PostgreSQL queue against a raw claim-and-complete loop, side by side in one run
# (docs/benchmarks.md has results and method).
#
#   benchmarks/queue.sh [-n REPS] [--tasks N] [--chain N] [--port P] [--scratch DIR] [--no-build]
#                       [--tuned] [--setup] [--no-celery] [--socket]
#
#   -n REPS        repetitions (default 5); medians are printed
#   --tasks N      no-op tasks for the throughput case (default 20000)
#   --chain N      tasks in the latency chain (default 200, so 199 upstream→downstream hand-offs)
#   --port P       loopback port of the benchmark's own PostgreSQL cluster (default 54341)
#   --scratch DIR  where the cluster, logs and scratch files go (default ${TMPDIR:-/tmp})
#   --no-build     use the binaries already in $BUILD (default /work/main/build-bench)
#   --no-celery    leave the Celery peer out
#   --socket       every client (pgbench, psql, dagrun) connects through the cluster's Unix-domain
#                  socket instead of TCP on loopback: a scheduler and workers on the database's
#                  machine can (a URL whose host is the socket's folder, percent-encoded)
#   --tuned        also run dagrun with the earlier hand-tuned flags (`--parallelism 2000`,
#                  `--concurrency 64`), recorded as case `tuned` beside the defaults
#   --chart FILE   draw the medians (tasks/s and latency of each peer) into FILE, an SVG, with gnuplot
#   --setup        install the peers' Debian packages first (python3-celery, python3-redis,
#                  redis-server; gnuplot-nox for the chart) with apt-get, if they are missing
#
# The cluster is a fresh one with PostgreSQL's durable defaults (fsync, synchronous_commit and
# full_page_writes on): every commit below waits for the disk. Each repetition, in a fresh
# database each:
#   raw:        pgbench, two clients (one per "worker"), benchmarks/raw_claim_complete.sql: per task
#               one SKIP LOCKED claim and one completion, each its own commit. tasks/s = pgbench's tps.
#   dagrun:     one `schedule --executor queue` and two `worker` processes, all with their default
#               sizes (what a user who passes no tuning flag gets), run one run of N no-op C++ callables (bench_callables of dagrun_cpp_dags).
#               Every try goes through the queue table, and the scheduler records every state in
#               PostgreSQL. tasks/s = N / (run end − run start) as the store records them; also
#               quoted: N / (last task end − first task start), and N / wall time from the
#               scheduler's process start to the run's success (loading the DAG included).
#   latency:    the same processes run a chain of no-op callables (bench_chain_callables); for each
#               edge, downstream start − upstream end from the store's task records: p50, p99, max.
#   celery:     Celery on Redis (Debian's python3-celery and redis-server; the executor the seed's
#               Airflow runs), benchmarks/celery_peer.py: two `celery worker` processes (prefork,
#               their default concurrency), a producer enqueueing N no-op tasks one at a time as
#               Airflow's CeleryExecutor does; tasks/s = N / (first enqueue → last task run).
#               Redis persists nothing (its default RDB snapshots are off here), so this side runs
#               without the durable commits the other two pay for. Its latency: a chain of CHAIN
#               no-op tasks, each sending the next as it ends (a Celery chain), next start − end.
#               --no-celery skips it.
# Waiting for a run to finish polls the database every 50 ms from one session (this is a
# benchmark, not a test).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
REPS=5 TASKS=20000 CHAIN=200 PORT=54341 SCRATCH_PARENT=${TMPDIR:-/tmp} BUILD_FIRST=1 CELERY=1 TUNED=0 SETUP=0 CHART= SOCKET=0
while [[ $# -gt 0 ]]; do
  case $1 in
    -n) REPS=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --chain) CHAIN=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --scratch) SCRATCH_PARENT=$2; shift 2 ;;
    --no-build) BUILD_FIRST=0; shift ;;
    --no-celery) CELERY=0; shift ;;
    --socket) SOCKET=1; shift ;;
    --tuned) TUNED=1; shift ;;
    --setup) SETUP=1; shift ;;
    --chart) CHART=$2; shift 2 ;;
    -h|--help) sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "queue.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
(( TASKS % 2 == 0 )) || { echo "queue.sh: --tasks must be even (two pgbench clients share them)" >&2; exit 2; }

if [[ $BUILD_FIRST == 1 ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -g -DNDEBUG" \
    -DDAG_BUILD_BENCHMARKS=ON -DDAG_BUILD_TESTS=OFF -DDAG_WARNINGS_AS_ERRORS=ON >/dev/null
  cmake --build "$BUILD" -j2 --target dagrun_cpp_dags >/dev/null
fi
BIN=$BUILD/benchmarks/dagrun_cpp_dags
[[ -x $BIN ]] || { echo "queue.sh: $BIN is missing (build first, or drop --no-build)" >&2; exit 2; }
if ((SETUP)); then
  missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  /usr/bin/python3 -c 'import celery' 2>/dev/null || missing+=(python3-celery)
  /usr/bin/python3 -c 'import redis' 2>/dev/null || missing+=(python3-redis)
  command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
  if ((${#missing[@]})); then
    echo "queue.sh: installing ${missing[*]}" >&2
    SUDO=; ((EUID == 0)) || SUDO=sudo
    $SUDO apt-get install -y -q "${missing[@]}" >&2
  fi
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if ((CELERY)) && ! { command -v redis-server >/dev/null && /usr/bin/python3 -c 'import celery, redis' 2>/dev/null; }; then
  echo "queue.sh: the Celery peer needs Debian's python3-celery, python3-redis and redis-server" \
       "(apt-get install python3-celery python3-redis redis-server), or pass --no-celery" >&2
  exit 2
fi

WORK=$(mktemp -d "$SCRATCH_PARENT/dagrun-queue-bench.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$ROOT/scripts/test-postgres.sh" stop "$WORK/pg" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
"$ROOT/scripts/test-postgres.sh" start "$WORK/pg" "$PORT" --durable >/dev/null
PGHOSTARG=127.0.0.1
BASE="postgresql://postgres@127.0.0.1:$PORT"
if ((SOCKET)); then  # test-postgres.sh puts the socket in the cluster's folder
  PGHOSTARG=$WORK/pg
  BASE="postgresql://postgres@$(/usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$WORK/pg"):$PORT"
fi
sql() { local db=$1; shift; PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h "$PGHOSTARG" -p "$PORT" -U postgres -d "$db" "$@"; }
RESULTS=$WORK/results.txt
: >"$RESULTS"

echo "== machine"
echo "nproc:      $(nproc)"
echo "cpu:        $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "postgresql: $(sql postgres -c 'SHOW server_version')   fsync=$(sql postgres -c 'SHOW fsync') synchronous_commit=$(sql postgres -c 'SHOW synchronous_commit')"
echo "scratch:    $WORK ($(df -T "$WORK" | awk 'NR==2 {print $2}'))"
echo "dagrun:     built from $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "load:       $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reps:       $REPS   tasks: $TASKS   chain: $CHAIN"

record() { echo "$1 $2 $3" >>"$RESULTS"; printf '  %-10s %-26s %10s\n' "$1" "$2" "$3"; }

# fresh_db NAME: a new, empty database.
fresh_db() { sql postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null; }

raw_case() {
  local db=raw_$1
  fresh_db "$db"
  sql "$db" -c "CREATE TABLE bench_raw_queue (id BIGSERIAL PRIMARY KEY, state TEXT NOT NULL DEFAULT 'queued',
                  payload TEXT NOT NULL, lease_token TEXT, heartbeat_at TIMESTAMPTZ, result TEXT);
                CREATE INDEX ON bench_raw_queue (id) WHERE state = 'queued';
                INSERT INTO bench_raw_queue (payload) SELECT '{\"operator\":\"callable\"}' FROM generate_series(1, $TASKS);" \
      -c "VACUUM ANALYZE bench_raw_queue"
  local out tps
  out=$("$PGBIN/pgbench" -n -h "$PGHOSTARG" -p "$PORT" -U postgres -c 2 -j 2 -t $((TASKS / 2)) \
        -f "$ROOT/benchmarks/raw_claim_complete.sql" "$db" 2>&1) || { echo "$out" >&2; exit 1; }
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
  [[ $(sql "$db" -c "SELECT count(*) FROM bench_raw_queue WHERE state = 'done'") == "$TASKS" ]] \
    || { echo "queue.sh: the raw loop did not complete every task" >&2; exit 1; }
  record raw tasks/s "$tps"
}

celery_case() {
  local dir=$WORK/celery_$1
  mkdir -p "$dir"
  local port=$((PORT + 1))
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --daemonize no \
    >"$dir/redis.log" 2>&1 & PIDS+=($!)
  # Its port is the cluster's + 1: something else there (another PostgreSQL, say) makes
  # redis-server exit, and the ping would never answer.
  local redis=$! deadline=$((SECONDS + 30))
  until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do
    kill -0 "$redis" 2>/dev/null && ((SECONDS < deadline)) ||
      { echo "queue.sh: redis-server on port $port (--port + 1) did not start:" >&2; cat "$dir/redis.log" >&2; exit 1; }
    sleep 0.05
  done
  export BENCH_REDIS=redis://127.0.0.1:$port/0
  local w
  for w in 1 2; do
    (cd "$ROOT/benchmarks" && exec /usr/bin/python3 -m celery -A celery_peer worker -n "w$w@%h" --loglevel WARNING \
      >"$dir/worker$w.log" 2>&1) & PIDS+=($!)
  done
  # Both workers up before the clock starts (they answer a ping).
  local deadline=$((SECONDS + 120))
  until [[ $( (cd "$ROOT/benchmarks" && /usr/bin/python3 -m celery -A celery_peer inspect ping --timeout 2 2>/dev/null) | grep -c "@.*OK") == 2 ]]; do
    ((SECONDS < deadline)) || { echo "queue.sh: the Celery workers did not answer within 120 s:" >&2; cat "$dir"/worker*.log >&2; exit 1; }
    sleep 0.2
  done
  local rates
  rates=$(cd "$ROOT/benchmarks" && /usr/bin/python3 celery_peer.py produce "$TASKS")
  record celery tasks/s "${rates% *}"
  record celery enqueue/s "${rates#* }"
  local lat
  lat=$(cd "$ROOT/benchmarks" && /usr/bin/python3 celery_peer.py chain "$CHAIN")
  read -r p50 p99 pmax <<<"$lat"
  record celery-latency p50-ms "$p50"
  record celery-latency p99-ms "$p99"
  record celery-latency max-ms "$pmax"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}

# dagrun_case REP DAG [tuned]: two workers and a scheduler run one manual run of DAG, with their
# default sizes or (tuned) the earlier hand-tuned flags; sets DB (the database) and WALL.
dagrun_case() {
  local rep=$1 dag=$2 mode=${3:-default}
  local db=${dag}_${mode}_$rep dir=$WORK/${dag}_${mode}_$rep
  fresh_db "$db"
  mkdir -p "$dir/dags" "$dir/logs"
  local url=$BASE/$db
  export BENCH_CALLABLES=$TASKS BENCH_CHAIN=$CHAIN BENCH_DAGS=$dag
  local common=(--db "$url" --dags "$dir/dags" --logs "$dir/logs" --log-level warn)
  local sched_flags=() worker_flags=() prof_s=() prof_w=()
  [[ $mode == tuned ]] && sched_flags=(--parallelism 2000) worker_flags=(--concurrency 64)
  # PERF_DIR=DIR: perf profiles (call graphs) of the scheduler and the first worker go there.
  if [[ -n ${PERF_DIR:-} && $rep == 1 ]]; then
    prof_s=(perf record -q -F 999 -g -o "$PERF_DIR/$dag-$mode-scheduler.data" --)
    prof_w=(perf record -q -F 999 -g -o "$PERF_DIR/$dag-$mode-worker.data" --)
  fi
  "$BIN" db migrate "${common[@]}" >/dev/null
  "$BIN" trigger "$dag" --date 2024-01-01 "${common[@]}" >/dev/null
  "${prof_w[@]}" "$BIN" worker "${worker_flags[@]}" "${common[@]}" >"$dir/worker1.log" 2>&1 & PIDS+=($!)
  "$BIN" worker "${worker_flags[@]}" "${common[@]}" >"$dir/worker2.log" 2>&1 & PIDS+=($!)
  local t0 t1 state=""
  t0=$EPOCHREALTIME
  "${prof_s[@]}" "$BIN" schedule --executor queue "${sched_flags[@]}" --listen 127.0.0.1:0 "${common[@]}" >"$dir/scheduler.log" 2>&1 & PIDS+=($!)
  # Watched from one session (a statement every 50 ms, each in its own transaction), not a psql
  # process a poll: each of those was a new server backend, and forking and starting one every
  # 50 ms took about a tenth of this machine's two CPUs from the run it was watching. (The
  # session holds a snapshot at most about 50 ms old meanwhile, which delays the pruning of the
  # queue's dead row versions by as much; PostgreSQL 11 or later, for the COMMIT in a DO block.)
  state=$(sql "$db" -c "DO \$\$ DECLARE s text; BEGIN
      FOR i IN 1..12000 LOOP
        SELECT state INTO s FROM dag_runs WHERE dag_id = '$dag';
        EXIT WHEN s IN ('success', 'failed');
        COMMIT;
        PERFORM pg_sleep(0.05);
      END LOOP;
    END \$\$" -c "SELECT state FROM dag_runs WHERE dag_id = '$dag'" || true)
  [[ $state == failed ]] && { echo "queue.sh: the $dag run failed (see $dir)" >&2; exit 1; }
  [[ $state == success ]] || { echo "queue.sh: the $dag run did not finish in 600 s (state '$state')" >&2; exit 1; }
  t1=$EPOCHREALTIME
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
  WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
  DB=$db
}

# throughput_of CASE: the rates of the bench_callables run dagrun_case just made.
throughput_of() {
  [[ $(sql "$DB" -c "SELECT count(*) FROM task_instances WHERE state = 'success'") == "$TASKS" ]] \
    || { echo "queue.sh: not every task succeeded" >&2; exit 1; }
  record "$1" tasks/s-run "$(sql "$DB" -c "SELECT round($TASKS / ((end_date - start_date) / 1e6), 1) FROM dag_runs")"
  record "$1" tasks/s-first-to-last "$(sql "$DB" -c "SELECT round($TASKS / ((max(end_date) - min(start_date)) / 1e6), 1) FROM task_instances")"
  record "$1" tasks/s-wall "$(awk -v n="$TASKS" -v w="$WALL" 'BEGIN { printf "%.1f", n / w }')"
}

for ((rep = 1; rep <= REPS; rep++)); do
  echo "== repetition $rep/$REPS"
  # Alternate the order so a drift of the machine's load does not favour one side.
  ((rep % 2)) && raw_case "$rep"
  dagrun_case "$rep" bench_callables
  throughput_of dagrun
  ((TUNED)) && { dagrun_case "$rep" bench_callables tuned; throughput_of tuned; }
  ((rep % 2)) || raw_case "$rep"
  ((CELERY)) && celery_case "$rep"

  dagrun_case "$rep" bench_chain_callables
  # t0, t1, …: each edge is t(i) → t(i+1); times are microseconds.
  read -r p50 p99 pmax < <(sql "$DB" -F ' ' -c "
    WITH t AS (SELECT substr(task_id, 2)::int AS i, start_date AS s, end_date AS e FROM task_instances),
         d AS (SELECT (b.s - a.e) / 1000.0 AS ms FROM t a JOIN t b ON b.i = a.i + 1)
    SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2),
           round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2), round(max(ms)::numeric, 2) FROM d")
  record latency p50-ms "$p50"
  record latency p99-ms "$p99"
  record latency max-ms "$pmax"
done

median() {  # median CASE WHAT
  awk -v c="$1" -v w="$2" '$1 == c && $2 == w { print $3 }' "$RESULTS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == "<=") ? v <= t : v >= t; print ok ? "met" : "MISSED" }'; }

echo
echo "== medians of $REPS"
r=$(median raw tasks/s) d=$(median dagrun tasks/s-run)
echo "throughput ($TASKS no-op tasks, two workers, durable commits):"
echo "  raw claim+complete loop (pgbench, 2 clients): $r tasks/s"
echo "  dagrun defaults, run start to end:            $d tasks/s  ($(awk -v a="$d" -v b="$r" 'BEGIN { printf "%.2f", a / b }')x the raw loop; target >= 10000: $(verdict "$d" ">=" 10000))"
echo "  dagrun, first task start to last task end:    $(median dagrun tasks/s-first-to-last) tasks/s"
echo "  dagrun, scheduler start to run success seen:  $(median dagrun tasks/s-wall) tasks/s"
((TUNED)) && echo "  dagrun tuned (--parallelism 2000, --concurrency 64): $(median tuned tasks/s-run) tasks/s"
if ((CELERY)); then
  c=$(median celery tasks/s)
  echo "  Celery on Redis, 2 workers (no durable commits): $c tasks/s (dagrun is $(awk -v a="$d" -v b="$c" 'BEGIN { printf "%.2f", a / b }')x; enqueue alone $(median celery enqueue/s)/s)"
fi
p50=$(median latency p50-ms) p99=$(median latency p99-ms)
echo "latency (upstream end to downstream start, chain of $CHAIN):"
echo "  dagrun: p50 $p50 ms (target <= 2: $(verdict "$p50" "<=" 2))   p99 $p99 ms (target <= 10: $(verdict "$p99" "<=" 10))   max $(median latency max-ms) ms"
((CELERY)) && echo "  Celery: p50 $(median celery-latency p50-ms) ms   p99 $(median celery-latency p99-ms) ms   max $(median celery-latency max-ms) ms"
if [[ -n $CHART ]]; then
  if command -v gnuplot >/dev/null; then
    # Two panels: throughput (tasks/s, higher is better) and hand-off latency (ms, lower is better).
    { echo "peer tasks/s"
      echo "\"raw loop\" $r"
      echo "\"dagrun\" $d"
      ((TUNED)) && echo "\"dagrun tuned\" $(median tuned tasks/s-run)"
      ((CELERY)) && echo "\"Celery\" $c"
      true
    } >"$WORK/tps.dat"
    { echo "peer p50 p99"
      echo "\"dagrun\" $p50 $p99"
      ((CELERY)) && echo "\"Celery\" $(median celery-latency p50-ms) $(median celery-latency p99-ms)"
      true
    } >"$WORK/lat.dat"
    gnuplot <<GP
set terminal svg size 900,380 font "sans,11" background "white"
set output "$CHART"
set multiplot layout 1,2 title "$TASKS no-op tasks, two workers (medians of $REPS; $(nproc) CPUs, $(df -T "$WORK" | awk 'NR==2 {print $2}'))"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.8
set key off
set grid ytics
set xtics scale 0
set yrange [0:*]
set title "throughput, tasks/s (higher is better)"
plot "$WORK/tps.dat" using 2:xtic(1) skip 1 notitle linecolor rgb "#4878a8"
set key top left
set title "upstream end -> downstream start, ms (lower is better)"
plot "$WORK/lat.dat" using 2:xtic(1) skip 1 title "p50" linecolor rgb "#4878a8", "" using 3 skip 1 title "p99" linecolor rgb "#d08040"
unset multiplot
GP
    echo "chart: $CHART"
  else
    echo "queue.sh: no gnuplot, no chart (--setup installs gnuplot-nox)" >&2
  fi
fi
echo
echo "raw: case what value"
cat "$RESULTS"
