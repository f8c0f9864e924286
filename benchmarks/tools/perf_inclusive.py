#!/usr/bin/env python3
"""Inclusive and self shares of each symbol in `perf script` output with call chains.

    perf record -F 999 --call-graph dwarf,16384 -e cpu-clock -o perf.data PROGRAM ...
    perf script -i perf.data -F comm,pid,tid,ip,sym | benchmarks/tools/perf_inclusive.py [--pid PID] [--main-thread] [--top N]

--pid keeps the samples of one process (the scheduler, not the bash children it starts);
--main-thread keeps only its thread whose tid is the pid (dag::engine's thread in bench_engine
and dagrun). A symbol counts once per sample however often it appears in the chain.
"""
import argparse
import collections
import re
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--pid")
ap.add_argument("--main-thread", action="store_true")
ap.add_argument("--top", type=int, default=60)
args = ap.parse_args()

incl, self_ = collections.Counter(), collections.Counter()
kept = 0
keep, syms = False, []


def flush():
    global kept
    if keep:
        kept += 1
        for s in set(syms):
            incl[s] += 1
        if syms:
            self_[syms[0]] += 1


for line in sys.stdin:
    if not line.strip():
        flush()
        keep, syms = False, []
        continue
    if not line[0].isspace():
        m = re.match(r"\s*(.+?)\s+(\d+)/(\d+)\s", line) or re.match(r"\s*(.+?)\s+(\d+)\s", line)
        pid = m.group(2) if m else None
        tid = m.group(3) if m and m.lastindex and m.lastindex >= 3 else pid
        keep = m is not None and (args.pid is None or pid == args.pid) and (not args.main_thread or tid == pid)
        syms = []
    else:
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            s = re.sub(r"\+0x[0-9a-f]+", "", parts[1])
            syms.append(re.sub(r"\s*\(.*\)$", "", s)[:120])
flush()
print("samples kept:", kept)
for s, c in incl.most_common(args.top):
    print("%6.1f%%  self %5.1f%%  %s" % (100.0 * c / kept, 100.0 * self_[s] / kept, s))
