#!/usr/bin/env bash
# What settling in-doubt commits by a commit mark costs a durable write transaction, against the
# transaction id read it replaced (docs/reliability.md, docs/benchmarks.md), side by side in one run.
#
#   benchmarks/commit_mark_cost.sh [-n REPS] [--tasks N] [--port P] [--scratch DIR]
#
#   -n REPS        alternated repetitions of each variant (default 5); medians are printed
#   --tasks N      claim-and-complete loops per repetition, over two clients (default 4000, even)
#   --port P       loopback port of the script's own PostgreSQL cluster (default 54342)
#   --scratch DIR  where the cluster goes (default ${TMPDIR:-/tmp}); measure on a real disk
#
# Both variants run benchmarks/raw_claim_complete.sql's claim and completion, each in its own
# durable transaction (fsync, synchronous_commit on), as dagrun's pg_connection sends them:
#   txid:  the statement before COMMIT is `SELECT txid_current()` (dagrun before commit marks)
#   mark:  it is the commit mark's upsert with the client's advisory lock (dagrun now)
# Printed: tasks/s of each (median), and mark ÷ txid. Nothing here is a test.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=5 TASKS=4000 PORT=54342 SCRATCH_PARENT=${TMPDIR:-/tmp}
while (($#)); do
  case $1 in
    -n) REPS=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --scratch) SCRATCH_PARENT=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "commit_mark_cost.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "commit_mark_cost.sh: -n needs a positive number, not '$REPS'" >&2; exit 2; }
[[ $TASKS =~ ^[1-9][0-9]*$ ]] && (( TASKS % 2 == 0 )) \
  || { echo "commit_mark_cost.sh: --tasks needs a positive even number, not '$TASKS'" >&2; exit 2; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
WORK=$(mktemp -d "$SCRATCH_PARENT/dagrun-markcost.XXXXXX")
[[ $(id -u) -eq 0 ]] && chmod 755 "$WORK"
cleanup() { "$ROOT/scripts/test-postgres.sh" stop "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
"$ROOT/scripts/test-postgres.sh" start "$WORK/pg" "$PORT" --durable >/dev/null
sql() { PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d dagrun_test "$@"; }

claim="WITH c AS (SELECT id FROM bench_raw_queue WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
  UPDATE bench_raw_queue q SET state = 'claimed', lease_token = gen_random_uuid()::text, heartbeat_at = now()
  FROM c WHERE q.id = c.id RETURNING q.id AS claimed_id \\gset"
complete="UPDATE bench_raw_queue SET state = 'done', result = '{\"outcome\":0}' WHERE id = :claimed_id;"
txid="SELECT txid_current();"
mark="INSERT INTO dagrun_commit_marks (client, attempt, at) SELECT 'bench-' || :client_id, :attempt, now()
  FROM (SELECT pg_advisory_xact_lock(:client_id + 7000000)) AS held
  ON CONFLICT (client) DO UPDATE SET attempt = excluded.attempt, at = excluded.at;"
for v in txid mark; do
  before=${!v}
  { echo "\\set attempt random(1, 1000000000)"
    printf 'BEGIN;\n%s\n%s\nCOMMIT;\nBEGIN;\n%s\n%s\nCOMMIT;\n' "$claim" "$before" "$complete" "$before"
  } >"$WORK/$v.sql"
done
sql -c "CREATE TABLE dagrun_commit_marks (client TEXT PRIMARY KEY, attempt BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL)"

echo "postgresql $(sql -c 'SHOW server_version'), scratch $(df -T "$WORK" | awk 'NR==2 {print $2}'), load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A got
for ((rep = 1; rep <= REPS; rep++)); do
  for v in txid mark; do
    sql -c "DROP TABLE IF EXISTS bench_raw_queue" \
        -c "CREATE TABLE bench_raw_queue (id BIGSERIAL PRIMARY KEY, state TEXT NOT NULL DEFAULT 'queued',
              payload TEXT NOT NULL, lease_token TEXT, heartbeat_at TIMESTAMPTZ, result TEXT);
            CREATE INDEX ON bench_raw_queue (id) WHERE state = 'queued';
            INSERT INTO bench_raw_queue (payload) SELECT '{}' FROM generate_series(1, $TASKS);" \
        -c "VACUUM ANALYZE bench_raw_queue"
    out=$("$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PORT" -U postgres -M prepared -c 2 -j 2 -t $((TASKS / 2)) -f "$WORK/$v.sql" dagrun_test 2>&1) \
      || { echo "$out" >&2; exit 1; }
    [[ $(sql -c "SELECT count(*) FROM bench_raw_queue WHERE state = 'done'") == "$TASKS" ]] \
      || { echo "commit_mark_cost.sh: variant $v did not complete every task" >&2; exit 1; }
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
    got[$v]+="$tps "
    printf '  rep %d  %-5s %10s tasks/s\n' "$rep" "$v" "$tps"
  done
done
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
t=$(median "${got[txid]}") m=$(median "${got[mark]}")
echo "median tasks/s: txid $t   mark $m   mark ÷ txid $(awk -v m="$m" -v t="$t" 'BEGIN {printf "%.3f", m / t}')"
