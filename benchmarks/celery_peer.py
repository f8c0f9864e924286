"""Celery on Redis, the executor the seed's Airflow runs, on the queue benchmark's workload.

    celery_peer.py produce N      enqueue N no-op tasks one at a time (as Airflow's CeleryExecutor
                                  sends each task instance), wait until all ran, print tasks/s
    celery_peer.py chain N        N no-op tasks in a line, each sending the next when it ends (as a
                                  Celery chain does); print p50, p99 and max of next start − end, ms
    celery -A celery_peer worker  (started by benchmarks/queue.sh: two workers)

BENCH_REDIS names the broker. Each task increments one Redis counter so the producer knows when
all have run; results are not stored (task_ignore_result), which is the cheapest setting.
"""
import os
import sys
import time

import redis
from celery import Celery

URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("celery_peer", broker=URL)
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
counter = redis.Redis.from_url(URL)


@app.task
def noop():
    counter.incr("bench_done")


@app.task
def hop(left):
    counter.rpush("bench_starts", time.time())
    counter.rpush("bench_ends", time.time())
    if left > 1:
        hop.delay(left - 1)


def chain(n):
    counter.delete("bench_starts", "bench_ends")
    hop.delay(n)
    deadline = time.monotonic() + 600
    while counter.llen("bench_ends") < n:
        if time.monotonic() > deadline:
            sys.exit("celery_peer: the chain did not finish within 600 s")
        time.sleep(0.01)
    starts = [float(x) for x in counter.lrange("bench_starts", 0, -1)]
    ends = [float(x) for x in counter.lrange("bench_ends", 0, -1)]
    gaps = sorted((starts[i + 1] - ends[i]) * 1000 for i in range(n - 1))
    pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))]
    print(f"{pick(0.5):.2f} {pick(0.99):.2f} {gaps[-1]:.2f}")


def produce(n):
    counter.set("bench_done", 0)
    start = time.monotonic()
    for _ in range(n):
        noop.delay()
    enqueued = time.monotonic()
    deadline = start + 600
    while int(counter.get("bench_done") or 0) < n:
        if time.monotonic() > deadline:
            sys.exit("celery_peer: not every task ran within 600 s")
        time.sleep(0.01)
    done = time.monotonic()
    print(f"{n / (done - start):.1f} {n / (enqueued - start):.1f}")


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "produce":
    produce(int(sys.argv[2]))
if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "chain":
    chain(int(sys.argv[2]))
