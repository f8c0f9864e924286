-- The baseline of benchmarks/queue.sh: a raw claim-and-complete loop, one task per iteration,
-- as a hand-written SKIP LOCKED worker does it. Each statement is its own (durable) transaction:
-- the claim (with a lease token and heartbeat, like dagrun's) and then the completion.
-- Run by pgbench with one client per worker: pgbench -n -c 2 -j 2 -t N/2 -f this file.
WITH c AS (SELECT id FROM bench_raw_queue WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
  UPDATE bench_raw_queue q SET state = 'claimed', lease_token = gen_random_uuid()::text, heartbeat_at = now()
  FROM c WHERE q.id = c.id RETURNING q.id AS claimed_id \gset
UPDATE bench_raw_queue SET state = 'done', result = '{"outcome":0}' WHERE id = :claimed_id;
