#!/usr/bin/env python3
"""Median gaps between the events of a repeating cycle (one task of a chain, one make target).

    # uprobes on the engine's hot path (addresses from `nm`), plus scheduler tracepoints:
    perf probe -x build-bench/benchmarks/bench_engine -a 'runone=0xADDR' ...
    perf record -e 'probe_bench_engine:*' -e sched:sched_process_exec -e sched:sched_process_exit -o tl.data \
        build-bench/benchmarks/bench_engine chain --tasks 1000 --op bash --dir /dev/shm/x
    perf script -i tl.data -F comm,tid,time,event | benchmarks/tools/perf_timeline.py runone

The first argument names the event that starts a cycle. Cycles whose events come in the most
common order are kept; for each event the median and mean gap after the previous one is printed.
"""
import collections
import re
import statistics
import sys

first = sys.argv[1]
events = []
for line in sys.stdin:
    m = re.match(r"\s*(.+?)\s+(\d+)\s+([\d.]+):\s+(\S+):", line)
    if m:
        events.append((float(m.group(3)), m.group(4).split(":")[-1]))
events.sort()
cycles, cur = [], None
for t, name in events:
    if name == first:
        if cur:
            cycles.append(cur)
        cur = {first: t, "_order": [first]}
    elif cur is not None and name not in cur:
        cur[name] = t
        cur["_order"].append(name)
if cur:
    cycles.append(cur)
order = collections.Counter(tuple(c["_order"]) for c in cycles).most_common(1)[0][0]
full = [c for c in cycles if tuple(c["_order"]) == order]
print("cycles: %d, in the usual order: %d" % (len(cycles), len(full)))
print("%-30s %12s %12s" % ("event", "gap med us", "gap mean us"))
for a, b in zip(order, order[1:]):
    gaps = [(c[b] - c[a]) * 1e6 for c in full]
    print("%-30s %12.1f %12.1f" % (b, statistics.median(gaps), statistics.mean(gaps)))
whole = [(b[first] - a[first]) * 1e6 for a, b in zip(cycles, cycles[1:])]
print("%-30s %12.1f %12.1f" % ("whole cycle", statistics.median(whole), statistics.mean(whole)))
