#!/usr/bin/env bash
# dagrun against GNU make, side by side in one run (docs/benchmarks.md has results and method).
#
#   benchmarks/run.sh [-n REPS] [--cases LIST] [--scratch DIR] [--no-build] [--quick]
#
#   -n REPS        repetitions per case and contender (default 5); medians are printed
#   --cases LIST   comma-separated subset of: chain,fanout,callables,chain10k,backfill,scale,ui (default all)
#   --scratch DIR  where scratch folders (DAGs, databases, logs, Makefiles) go
#                  (default ${TMPDIR:-/tmp}); /dev/shm takes the disk out of the picture
#   --no-build     use the binaries already in $BUILD (default /work/main/build-bench)
#   --quick        smaller sizes (chain 200, fan-out 400, callables 10,000, chain10k 1,000,
#                  backfill 30 days, scale 100 DAGs), for a smoke test
#
# chain10k: 10,000 no-op C++ callables in a line through bench_engine (every state persisted in
# SQLite): tasks/s, and the scheduler passes of that 10,000-task DAG (the first one, which looks
# at every task, and the median).
#
# scale: a folder of 1,000 generated YAML DAGs × 20 bash tasks (start dates in 2099, so the daemon
# has nothing to run): `validate` wall time; the daemon's start to its "scheduling N DAGs" line
# (every file parsed and checked, the store opened, the first pass next); its RSS and CPU over 5 s
# of idling; and after one file changes, the time until the daemon logs the reload.
#
# ui: the web UI's Grid page of 100 tasks x 100 finished runs (seeded straight into a SQLite store),
# rendered 50 times in-process through the HTTP face by bench_ui; its median render, in ms.
#
# Each repetition runs every contender of a case once, in turn (dagrun, then the make variants),
# each in a fresh scratch folder made before the clock starts and deleted after it stops. Times
# are wall-clock seconds of the whole command (process start to exit) measured with bash's
# EPOCHREALTIME, except where a case says otherwise.
#
# The make baselines start exactly one process per target, as dagrun does:
#   make-sh:   SHELL=/bin/sh,   recipe `@sh -c true` — make execs /bin/sh (dash) itself, once per target
#   make-bash: SHELL=/bin/bash, recipe `@true`       — make runs `/bin/bash -c true`, once per target
#              (make's no-shell fast path only applies when SHELL is /bin/sh)
# dagrun executes `true` directly (a plain command skips the shell: one exec, docs/yaml.md), and
# a silent try makes no log file. No timing assertions: this prints numbers.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
REPS=5
CASES=chain,fanout,callables,chain10k,backfill,scale,ui
SCRATCH_PARENT=${TMPDIR:-/tmp}
BUILD_FIRST=1
CHAIN_N=1000 FANOUT_N=2000 CALLABLES_N=100000 CHAIN10K_N=10000 BACKFILL_END=2024-12-30  # 2024-01-01..2024-12-30: 365 dates
SCALE_DAGS=1000 SCALE_TASKS=20

while [[ $# -gt 0 ]]; do
  case $1 in
    -n) REPS=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    --scratch) SCRATCH_PARENT=$2; shift 2 ;;
    --no-build) BUILD_FIRST=0; shift ;;
    --quick) CHAIN_N=200 FANOUT_N=400 CALLABLES_N=10000 CHAIN10K_N=1000 BACKFILL_END=2024-01-30 SCALE_DAGS=100; shift ;;
    -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
has_case() { [[ ",$CASES," == *",$1,"* ]]; }

# --- build ---------------------------------------------------------------------------------------
# Release with -O2 (CMake's Release default is -O3); -g only adds symbols for perf/callgrind.
if [[ $BUILD_FIRST == 1 ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -g -DNDEBUG" \
    -DDAG_BUILD_BENCHMARKS=ON -DDAG_BUILD_TESTS=OFF -DDAG_WARNINGS_AS_ERRORS=ON >/dev/null
  cmake --build "$BUILD" -j2 --target dagrun bench_engine dagrun_cpp_dags bench_store bench_ui >/dev/null
  { git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'
    if [[ -n $(git -C "$ROOT" status --porcelain -- libdag operators runner 2>/dev/null) ]]; then echo ' (library sources modified)'; fi
  } | tr -d '\n' >"$BUILD/benchmarks/built-from.txt"
fi
DAGRUN=$BUILD/runner/dagrun
CPP_DAGRUN=$BUILD/benchmarks/dagrun_cpp_dags
BENCH_ENGINE=$BUILD/benchmarks/bench_engine
BENCH_UI=$BUILD/benchmarks/bench_ui
for b in "$DAGRUN" "$CPP_DAGRUN" "$BENCH_ENGINE" "$BENCH_UI"; do
  [[ -x $b ]] || { echo "run.sh: $b is missing (build first, or drop --no-build)" >&2; exit 2; }
done

WORK=$(mktemp -d "$SCRATCH_PARENT/dagrun-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RESULTS=$WORK/results.txt
: >"$RESULTS"

# --- machine --------------------------------------------------------------------------------------
echo "== machine"
echo "nproc:     $(nproc)"
echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "kernel:    $(uname -r)"
echo "make:      $(make --version | head -1)"
echo "bash:      $(bash --version | head -1)"
echo "sh:        $(readlink -f /bin/sh)"
echo "allocator: $("$BUILD/runner/dagrun" version 2>/dev/null | sed -n 's/^allocator: //p')"
echo "scratch:   $WORK ($(df -T "$WORK" | awk 'NR==2 {print $2}'))"
echo "dagrun:    built from $(cat "$BUILD/benchmarks/built-from.txt" 2>/dev/null || echo 'an unrecorded tree (built outside run.sh)')"
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reps:      $REPS"

# --- generators -----------------------------------------------------------------------------------
# gen_make FILE N SHELL_KIND DEPS: N targets t0..t(N-1); DEPS=chain makes each depend on the previous.
gen_make() {
  local file=$1 n=$2 kind=$3 deps=$4
  awk -v n="$n" -v kind="$kind" -v deps="$deps" 'BEGIN {
    if (kind == "sh") { print "SHELL := /bin/sh"; recipe = "\t@sh -c true" }
    else { print "SHELL := /bin/bash"; recipe = "\t@true" }
    print ".PHONY: all"
    if (deps == "chain") print "all: t" (n - 1)
    else { printf "all:"; for (i = 0; i < n; i++) printf " t%d", i; print "" }
    for (i = 0; i < n; i++) {
      if (deps == "chain" && i > 0) print "t" i ": t" (i - 1); else print "t" i ":"
      print recipe
    }
  }' >"$file"
}

# gen_yaml FILE DAG_ID N DEPS [EXTRA_KEYS]: N bash tasks running `true`.
gen_yaml() {
  local file=$1 id=$2 n=$3 deps=$4 extra=${5:-}
  awk -v n="$n" -v id="$id" -v deps="$deps" -v extra="$extra" 'BEGIN {
    print "dag_id: " id
    if (extra != "") print extra
    print "tasks:"
    for (i = 0; i < n; i++) {
      printf "  - task_id: t%05d\n    operator: bash\n    bash_command: \"true\"\n", i
      if (deps == "chain" && i > 0) printf "    dependencies: [t%05d]\n", i - 1
    }
  }' >"$file"
}

# --- timing -------------------------------------------------------------------------------------
# timed CASE CONTENDER SCRATCH -- COMMAND...: runs COMMAND in SCRATCH (a fresh folder), records
# the wall time; a failing command aborts the whole run (a benchmark of a failure means nothing).
timed() {
  local case=$1 who=$2 dir=$3; shift 4
  local t0 t1 rc=0
  t0=$EPOCHREALTIME
  (cd "$dir" && "$@") >"$dir.out" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  if [[ $rc != 0 ]]; then
    echo "run.sh: $case/$who failed (exit $rc): $*" >&2
    tail -5 "$dir.out" >&2
    exit 1
  fi
  echo "$case $who $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')" >>"$RESULTS"
  printf '  %-10s %-22s %8.3f s\n' "$case" "$who" "$(tail -1 "$RESULTS" | cut -d' ' -f3)"
}

# fresh NAME: a new empty scratch folder (the previous one of that name is removed first,
# outside any timed region).
fresh() {
  rm -rf "${WORK:?}/$1" "$WORK/$1.out"
  mkdir -p "$WORK/$1"
  echo "$WORK/$1"
}

# engine_result CASE WHO KEY [WHO2 KEY2 ...] -- ARGS: runs bench_engine once and records each KEY of its RESULT line as WHO.
engine_result() {
  local case=$1 pairs=() dir line value who key i
  shift
  while [[ $1 != -- ]]; do pairs+=("$1" "$2"); shift 2; done
  shift
  dir=$(fresh "engine")
  line=$("$BENCH_ENGINE" "$@" --dir "$dir" | grep '^RESULT') || { echo "run.sh: bench_engine $* failed" >&2; exit 1; }
  for ((i = 0; i < ${#pairs[@]}; i += 2)); do
    who=${pairs[i]} key=${pairs[i + 1]}
    value=$(sed -n "s/.* $key=\([^ ]*\).*/\1/p" <<<"$line")
    echo "$case $who $value" >>"$RESULTS"
    printf '  %-10s %-22s %10s  (%s)\n' "$case" "$who" "$value" "$key"
  done
}

# --- inputs -----------------------------------------------------------------------------------------
mkdir -p "$WORK/in/chain" "$WORK/in/fanout" "$WORK/in/daily" "$WORK/in/empty"
gen_make "$WORK/in/chain_sh.mk" "$CHAIN_N" sh chain
gen_make "$WORK/in/chain_bash.mk" "$CHAIN_N" bash chain
gen_make "$WORK/in/fanout_sh.mk" "$FANOUT_N" sh none
gen_make "$WORK/in/fanout_bash.mk" "$FANOUT_N" bash none
BACKFILL_TASKS=$(( ($(date -d "$BACKFILL_END" +%s) - $(date -d 2024-01-01 +%s)) / 86400 * 10 + 10 ))
gen_make "$WORK/in/backfill_bash.mk" "$BACKFILL_TASKS" bash none
gen_yaml "$WORK/in/chain/chain.yaml" bench_chain_bash "$CHAIN_N" chain
gen_yaml "$WORK/in/fanout/fanout.yaml" bench_fanout_bash "$FANOUT_N" none "max_active_tasks: 2"
gen_yaml "$WORK/in/daily/daily.yaml" bench_daily_bash 10 none $'schedule: "@daily"\nstart_date: 2024-01-01\ncatchup: false'
"$DAGRUN" validate "$WORK/in/chain" >/dev/null
"$DAGRUN" validate "$WORK/in/fanout" >/dev/null
"$DAGRUN" validate "$WORK/in/daily" >/dev/null
if has_case scale; then
  mkdir -p "$WORK/in/scale"
  for ((i = 0; i < SCALE_DAGS; i++)); do
    gen_yaml "$(printf '%s/in/scale/dag%04d.yaml' "$WORK" "$i")" "$(printf 'bench_scale_%04d' "$i")" "$SCALE_TASKS" chain \
      $'schedule: "@daily"\nstart_date: 2099-01-01\ntags: [bench, scale]'
  done
fi

# wait_for_line FILE REGEX PID: until FILE has a line matching REGEX (60 s at most, or PID dies).
wait_for_line() {
  local deadline=$((SECONDS + 60))
  until grep -q -- "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || { echo "run.sh: the daemon ended early:" >&2; tail -5 "$1" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "run.sh: no '$2' in $1 within 60 s" >&2; exit 1; }
    sleep 0.01
  done
}

# scale_daemon: the daemon on a copy of the scale folder: start, idle, one file changed.
scale_daemon() {
  local d t0 t1 pid ticks0 ticks1 hz
  d=$(fresh s2)
  cp -r "$WORK/in/scale" "$d/dags"
  t0=$EPOCHREALTIME
  "$DAGRUN" schedule --dags "$d/dags" --db "sqlite:$d/db" --logs "$d/logs" --listen none >"$d/daemon.log" 2>&1 &
  pid=$!
  wait_for_line "$d/daemon.log" "scheduling $SCALE_DAGS DAGs" "$pid"
  t1=$EPOCHREALTIME
  echo "scale start-s $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')" >>"$RESULTS"
  sleep 1  # let the first passes end before idling is measured
  hz=$(getconf CLK_TCK)
  ticks0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  sleep 5
  ticks1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  echo "scale idle-cpu-% $(awk -v a="$ticks0" -v b="$ticks1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz / 5 * 100 }')" >>"$RESULTS"
  echo "scale rss-mb $(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")" >>"$RESULTS"
  t0=$EPOCHREALTIME
  echo "# changed" >>"$d/dags/dag0000.yaml"
  wait_for_line "$d/daemon.log" "reloaded DAGs" "$pid"
  t1=$EPOCHREALTIME
  echo "scale reload-s $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')" >>"$RESULTS"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  printf '  %-10s start %ss  idle CPU %s%%  RSS %s MB  reload %ss\n' scale \
    "$(grep '^scale start-s' "$RESULTS" | tail -1 | cut -d' ' -f3)" "$(grep '^scale idle-cpu-%' "$RESULTS" | tail -1 | cut -d' ' -f3)" \
    "$(grep '^scale rss-mb' "$RESULTS" | tail -1 | cut -d' ' -f3)" "$(grep '^scale reload-s' "$RESULTS" | tail -1 | cut -d' ' -f3)"
}

# --- cases ---------------------------------------------------------------------------------------------
for ((rep = 1; rep <= REPS; rep++)); do
  echo "== repetition $rep/$REPS"
  # Odd repetitions run dagrun first, even ones last, so that a slow drift of the machine's load
  # does not favour one side.
  if has_case chain; then
    chain_dagrun() { d=$(fresh c1); timed chain dagrun "$d" -- "$DAGRUN" run bench_chain_bash --date 2024-01-01 --dags "$WORK/in/chain" --db "sqlite:$d/db" --logs "$d/logs"; }
    ((rep % 2)) && chain_dagrun
    d=$(fresh c2); timed chain make-sh "$d" -- make -s -f "$WORK/in/chain_sh.mk"
    d=$(fresh c3); timed chain make-bash "$d" -- make -s -f "$WORK/in/chain_bash.mk"
    ((rep % 2)) || chain_dagrun
  fi
  if has_case fanout; then
    fanout_dagrun() { d=$(fresh f1); timed fanout dagrun "$d" -- "$DAGRUN" run bench_fanout_bash --date 2024-01-01 --dags "$WORK/in/fanout" --db "sqlite:$d/db" --logs "$d/logs"; }
    ((rep % 2)) && fanout_dagrun
    d=$(fresh f2); timed fanout make-sh "$d" -- make -s -j2 -f "$WORK/in/fanout_sh.mk"
    d=$(fresh f3); timed fanout make-bash "$d" -- make -s -j2 -f "$WORK/in/fanout_bash.mk"
    ((rep % 2)) || fanout_dagrun
  fi
  if has_case callables; then
    # In-process: tasks/s over creating the run and running it to its end (state in SQLite).
    engine_result callables engine-tasks/s tasks_per_s -- fanout --tasks "$CALLABLES_N" --op callable
    # The same DAG through the CLI (`run`), whole process: loading, checking, run, final listing.
    # With bench_engine's parallelism (engine_options' default, 32; `run`'s own default is 16):
    # tries in flight bound how many start per pass, hence commits per task.
    d=$(fresh k1); timed callables cli-run "$d" -- env BENCH_CALLABLES="$CALLABLES_N" "$CPP_DAGRUN" run bench_callables --date 2024-01-01 --parallelism 32 --dags "$WORK/in/empty" --db "sqlite:$d/db" --logs "$d/logs"
  fi
  if has_case chain10k; then
    engine_result chain10k engine-tasks/s tasks_per_s first-pass-ms first_pass_ms pass-median-ms pass_median_ms \
      -- chain --tasks "$CHAIN10K_N" --op callable
  fi
  if has_case backfill; then
    d=$(fresh b1); timed backfill yaml-bash "$d" -- "$DAGRUN" backfill bench_daily_bash --start 2024-01-01 --end "$BACKFILL_END" --dags "$WORK/in/daily" --db "sqlite:$d/db" --logs "$d/logs"
    # BENCH_DAGS: only the DAG backfilled is built (dagrun_cpp_dags also holds a 100,000-task one).
    d=$(fresh b2); timed backfill cpp-callables "$d" -- env BENCH_DAGS=bench_daily_callables "$CPP_DAGRUN" backfill bench_daily_callables --start 2024-01-01 --end "$BACKFILL_END" --dags "$WORK/in/empty" --db "sqlite:$d/db" --logs "$d/logs"
    # Reference, not a target: the same number of bash processes under make -j2 (a floor for the
    # YAML case on this machine; dagrun runs up to 16 at once, but there are only $(nproc) CPUs).
    d=$(fresh b3); timed backfill make-bash-j2 "$d" -- make -s -j2 -f "$WORK/in/backfill_bash.mk"
  fi
  if has_case scale; then
    d=$(fresh s1); timed scale validate "$d" -- "$DAGRUN" validate "$WORK/in/scale"
    scale_daemon
  fi
  if has_case ui; then
    d=$(fresh u1)
    line=$("$BENCH_UI" --dir "$d" | grep '^RESULT') || { echo "run.sh: bench_ui failed" >&2; exit 1; }
    value=$(sed -n 's/.* median_ms=\([^ ]*\).*/\1/p' <<<"$line")
    echo "ui grid-ms $value" >>"$RESULTS"
    printf '  %-10s %-22s %10s  (%s)\n' ui grid-100x100 "$value" "median ms of 50 renders"
  fi
done

# --- summary ---------------------------------------------------------------------------------------------
median() {  # median CASE WHO
  awk -v c="$1" -v w="$2" '$1 == c && $2 == w { print $3 }' "$RESULTS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minimum() {  # minimum CASE WHO (the least disturbed repetition; medians are what the summary quotes)
  awk -v c="$1" -v w="$2" '$1 == c && $2 == w { print $3 }' "$RESULTS" | sort -g | head -1
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
paired() {  # paired CASE A B: median over repetitions of A's time / B's time in the same repetition
  awk -v c="$1" -v a="$2" -v b="$3" '$1 == c && $2 == a { x[++i] = $3 } $1 == c && $2 == b { y[++j] = $3 }
    END { for (k = 1; k <= i && k <= j; k++) print x[k] / y[k] }' "$RESULTS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == "<=") ? v <= t : (op == ">=") ? v >= t : v < t; print ok ? "met" : "MISSED" }'; }

echo
echo "== medians of $REPS (seconds unless noted)"
if has_case chain; then
  a=$(median chain dagrun) s=$(median chain make-sh) b=$(median chain make-bash)
  echo "chain ($CHAIN_N bash tasks in a line):  dagrun $a   make-sh $s   make-bash $b"
  echo "  minima:                    dagrun $(minimum chain dagrun)   make-sh $(minimum chain make-sh)   make-bash $(minimum chain make-bash)"
  echo "  ratio of medians vs make-sh   $(ratio "$a" "$s")  (target <= 1.3: $(verdict "$(ratio "$a" "$s")" "<=" 1.3));  median of paired ratios $(paired chain dagrun make-sh)"
  echo "  ratio of medians vs make-bash $(ratio "$a" "$b")  (target <= 1.3: $(verdict "$(ratio "$a" "$b")" "<=" 1.3));  median of paired ratios $(paired chain dagrun make-bash)"
fi
if has_case fanout; then
  a=$(median fanout dagrun) s=$(median fanout make-sh) b=$(median fanout make-bash)
  echo "fanout ($FANOUT_N independent bash tasks, max_active_tasks 2 / make -j2):  dagrun $a   make-sh $s   make-bash $b"
  echo "  minima:                    dagrun $(minimum fanout dagrun)   make-sh $(minimum fanout make-sh)   make-bash $(minimum fanout make-bash)"
  echo "  ratio of medians vs make-sh   $(ratio "$a" "$s")  (target <= 1.25: $(verdict "$(ratio "$a" "$s")" "<=" 1.25));  median of paired ratios $(paired fanout dagrun make-sh)"
  echo "  ratio of medians vs make-bash $(ratio "$a" "$b")  (target <= 1.25: $(verdict "$(ratio "$a" "$b")" "<=" 1.25));  median of paired ratios $(paired fanout dagrun make-bash)"
fi
if has_case callables; then
  e=$(median callables engine-tasks/s) c=$(median callables cli-run)
  echo "callables ($CALLABLES_N no-op C++ callables, one run, SQLite):  engine $e tasks/s   CLI run $c s = $(awk -v n="$CALLABLES_N" -v t="$c" 'BEGIN { printf "%.0f", n / t }') tasks/s end to end"
  echo "  target >= 50000 tasks/s: engine $(verdict "$e" ">=" 50000)"
fi
if has_case chain10k; then
  e=$(median chain10k engine-tasks/s) f=$(median chain10k first-pass-ms) p=$(median chain10k pass-median-ms)
  echo "chain10k ($CHAIN10K_N no-op C++ callables in a line, SQLite):  $e tasks/s   scheduler pass: first $f ms, median $p ms"
  echo "  targets: >= 20000 tasks/s $(verdict "$e" ">=" 20000)   a pass < 10 ms: first $(verdict "$f" "<" 10), median $(verdict "$p" "<" 10)"
fi
if has_case backfill; then
  y=$(median backfill yaml-bash) k=$(median backfill cpp-callables) m=$(median backfill make-bash-j2)
  echo "backfill (dates 2024-01-01..$BACKFILL_END, 10 no-op tasks each, CLI):  YAML bash 'true' $y   C++ callables $k"
  echo "  reference: make -j2 running the same $BACKFILL_TASKS bash processes: $m"
  r=$(awk -v y="$y" -v m="$m" 'BEGIN { printf "%.2f", y / m }')
  echo "  targets (issue 14): YAML bash <= 1.1x make -j2 ($r) $(verdict "$r" "<=" 1.1)   C++ callables < 0.5 s $(verdict "$k" "<" 0.5)"
fi
if has_case scale; then
  v=$(median scale validate) st=$(median scale start-s) cpu=$(median scale idle-cpu-%) rss=$(median scale rss-mb) rl=$(median scale reload-s)
  echo "scale ($SCALE_DAGS YAML DAGs x $SCALE_TASKS tasks):  validate $v s   daemon start $st s   idle CPU $cpu %   RSS $rss MB   one file reloaded in $rl s"
  echo "  targets: validate < 1 s $(verdict "$v" "<" 1)   start < 2 s $(verdict "$st" "<" 2)   idle CPU < 1 % $(verdict "$cpu" "<" 1)   RSS < 150 MB $(verdict "$rss" "<" 150)"
fi
if has_case ui; then
  u=$(median ui grid-ms)
  echo "ui (the Grid page, 100 tasks x 100 runs, rendered in-process):  median of the repetitions' median renders $u ms"
  echo "  target < 100 ms: $(verdict "$u" "<" 100)"
fi
echo
echo "raw: case contender value"
cat "$RESULTS"
