// The PostgreSQL task queue: a table of tries and one of their payloads, batched statements,
// leases by random tokens, on the PostgreSQL connection layer the store uses too (retries,
// in-doubt commits: pg_connection.hpp).
#include <dag/exec/task_queue.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include <nlohmann/json.hpp>

#include <dag/core/error.hpp>
#include <dag/core/json_text.hpp>

#include "pg_attachment.hpp"
#include "pg_connection.hpp"
#include "result_json.hpp"

namespace dag {
namespace {

using json = nlohmann::json;

constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS dagrun_task_queue (
  id           BIGSERIAL PRIMARY KEY,
  dag_id       TEXT NOT NULL,
  run_id       TEXT NOT NULL,
  task_id      TEXT NOT NULL,
  try_number   INT NOT NULL,
  map_index    INT NOT NULL DEFAULT -1,
  queue        TEXT NOT NULL,
  priority     INT NOT NULL,
  state        TEXT NOT NULL DEFAULT 'queued',
  lease_token  TEXT,
  worker       TEXT,
  heartbeat_at TIMESTAMPTZ,
  result       TEXT,
  enqueued_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A queue made before mapped tasks: the map index joins the key (one row per try of an instance).
-- The old key goes (it would refuse a mapped task's second instance), and with it the enqueues of
-- the dagrun versions that named it.
ALTER TABLE dagrun_task_queue ADD COLUMN IF NOT EXISTS map_index INT NOT NULL DEFAULT -1;
ALTER TABLE dagrun_task_queue DROP CONSTRAINT IF EXISTS dagrun_task_queue_dag_id_run_id_task_id_try_number_key;
CREATE UNIQUE INDEX IF NOT EXISTS dagrun_task_queue_once ON dagrun_task_queue (dag_id, run_id, task_id, map_index, try_number);
CREATE INDEX IF NOT EXISTS dagrun_task_queue_ready ON dagrun_task_queue (queue, priority DESC, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS dagrun_task_queue_done ON dagrun_task_queue (id) WHERE state = 'done';
CREATE INDEX IF NOT EXISTS dagrun_task_queue_leases ON dagrun_task_queue (heartbeat_at) WHERE state = 'claimed';
-- Format 2: a scheduler that takes an end sets taken_at and leaves the state 'done', a column no
-- index names, so that PostgreSQL can update the row in place when its page has room (a HOT
-- update: no new index entries) instead of writing a new version into every index. Ends taken
-- under format 1 ('taken') become ends taken at that time. The check makes a format-1 scheduler
-- still running fail its takes and expiries loudly instead of leaving rows no one reads again.
ALTER TABLE dagrun_task_queue ADD COLUMN IF NOT EXISTS taken_at TIMESTAMPTZ;
UPDATE dagrun_task_queue SET state = 'done', taken_at = heartbeat_at WHERE state = 'taken';
DROP INDEX IF EXISTS dagrun_task_queue_taken;
ALTER TABLE dagrun_task_queue DROP CONSTRAINT IF EXISTS dagrun_task_queue_not_taken;
ALTER TABLE dagrun_task_queue ADD CONSTRAINT dagrun_task_queue_not_taken CHECK (state <> 'taken');
-- Room on each page for the in-place updates (pages written from now on).
ALTER TABLE dagrun_task_queue SET (fillfactor = 80);
-- Format 3: a try's payload (what a worker needs to run it: a few hundred bytes of rendered
-- fields, params and log path) in a table of its own, written once, read once by the claim and
-- deleted with the try's end, so that the claim, the completion and the take, each of which
-- writes a new version of the try's row, no longer copy it into the heap and the WAL. A table
-- of an older format hands the payloads of tries not yet ended over; ended ones need none.
CREATE TABLE IF NOT EXISTS dagrun_task_queue_payload (
  id      BIGINT PRIMARY KEY,
  payload TEXT NOT NULL
);
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'dagrun_task_queue'::regclass AND attname = 'payload'
             AND NOT attisdropped) THEN
    INSERT INTO dagrun_task_queue_payload (id, payload)
      SELECT id, payload FROM dagrun_task_queue WHERE state IN ('queued', 'claimed') ON CONFLICT (id) DO NOTHING;
    ALTER TABLE dagrun_task_queue DROP COLUMN payload;
  END IF;
END $$;
)sql";

/// The format of the queue table this dagrun reads and writes. The map index joining the key
/// (format 1) was a change an older dagrun cannot work with (its enqueues name the old key), and
/// so is every later format (2: taken ends marked by `taken_at`, not by their state; 3: payloads
/// in a table of their own): all schedulers and workers on one queue run one format, and are
/// upgraded together (docs/reliability.md, "Upgrading").
constexpr int queue_format = 3;

/// The queue format recorded in the database: 0 before any (no table, or one made before formats
/// were recorded); schema_sql brings any older format to the current one.
int recorded_format(pqxx::transaction_base& tx) {
  if (tx.exec("SELECT to_regclass('dagrun_task_queue_format') IS NULL")[0][0].as<bool>()) return 0;
  return tx.exec("SELECT COALESCE(MAX(format), 0) FROM dagrun_task_queue_format")[0][0].as<int>();
}

/// The columns read_key reads, of the queue table as `q`: a claim reads the payload (table `p`)
/// too, a scheduler the result.
constexpr std::string_view key_columns =
    "q.id, q.dag_id, q.run_id, q.task_id, q.try_number, q.map_index, q.queue, q.priority, q.lease_token, q.worker";

std::string payload_of(const queued_try& t) {
  json j{{"operator", t.operator_name},
         {"fields", t.fields},
         {"environment", t.environment},
         {"params", t.params},
         {"log_path", t.log_path},
         {"logical_date", t.logical_date.time_since_epoch().count()},
         {"data_interval_start", t.data_interval_start.time_since_epoch().count()},
         {"data_interval_end", t.data_interval_end.time_since_epoch().count()}};
  if (t.timeout_ms) j["timeout_ms"] = *t.timeout_ms;
  if (t.waited_us) j["waited_us"] = t.waited_us;
  if (t.instance_start != timestamp{}) j["instance_start"] = t.instance_start.time_since_epoch().count();
  if (!t.secrets.empty()) j["secrets"] = t.secrets;
  return json_dump(j);
}

/// A finished try's row as a scheduler reads it: the try's key, queue and claim, not its payload
/// (the scheduler built it, and reading it back would cost its bytes and a JSON parse per end).
queued_try read_key(const pqxx::row& r) {
  queued_try t;
  t.id = r["id"].as<std::int64_t>();
  t.dag_id = r["dag_id"].c_str();
  t.run_id = r["run_id"].c_str();
  t.task_id = r["task_id"].c_str();
  t.try_number = r["try_number"].as<int>();
  t.map_index = r["map_index"].as<int>();
  t.queue = r["queue"].c_str();
  t.priority = r["priority"].as<int>();
  if (!r["lease_token"].is_null()) t.lease_token = r["lease_token"].c_str();
  if (!r["worker"].is_null()) t.worker = r["worker"].c_str();
  return t;
}

/// The payload `j` (payload_of) into `t`.
void read_payload(queued_try& t, const json& j) {
  t.operator_name = j.at("operator").get<std::string>();
  t.fields = j.at("fields").get<std::map<std::string, std::string>>();
  t.environment = j.at("environment").get<std::map<std::string, std::string>>();
  t.params = j.at("params").get<std::map<std::string, std::string>>();
  t.log_path = j.at("log_path").get<std::string>();
  t.logical_date = time_point{std::chrono::seconds(j.at("logical_date").get<std::int64_t>())};
  t.data_interval_start = time_point{std::chrono::seconds(j.at("data_interval_start").get<std::int64_t>())};
  t.data_interval_end = time_point{std::chrono::seconds(j.at("data_interval_end").get<std::int64_t>())};
  if (j.contains("timeout_ms")) t.timeout_ms = j.at("timeout_ms").get<std::int64_t>();
  if (j.contains("waited_us")) t.waited_us = j.at("waited_us").get<std::int64_t>();
  if (j.contains("instance_start"))
    t.instance_start = timestamp{std::chrono::microseconds(j.at("instance_start").get<std::int64_t>())};
  if (j.contains("secrets")) t.secrets = j.at("secrets").get<std::vector<std::string>>();
}

/// A try's key, queue and claim as a notice carries them (notice_of_row, end_notice): the row's
/// columns by name.
queued_try read_key(const json& j) {
  queued_try t;
  t.id = j.at("id").get<std::int64_t>();
  t.dag_id = j.at("dag_id").get<std::string>();
  t.run_id = j.at("run_id").get<std::string>();
  t.task_id = j.at("task_id").get<std::string>();
  t.try_number = j.at("try_number").get<int>();
  t.map_index = j.at("map_index").get<int>();
  t.queue = j.at("queue").get<std::string>();
  t.priority = j.at("priority").get<int>();
  t.lease_token = j.at("lease_token").get<std::string>();
  t.worker = j.at("worker").get<std::string>();
  return t;
}

/// A claimed try's row as a worker reads it: its key, queue and claim, and its payload.
queued_try read_try(const pqxx::row& r) {
  queued_try t = read_key(r);
  read_payload(t, json::parse(r["payload"].c_str()));
  return t;
}

/// A pushed try as its notice carries it (notice_of_row): its key, queue, claim and payload.
/// Throws on anything else.
queued_try read_push_notice(const std::string& text) {
  const json j = json::parse(text);
  queued_try t = read_key(j);
  read_payload(t, j.at("payload"));
  return t;
}

/// The poke a payload names (zero when it names none: written by a scheduler older than the
/// field), read here rather than with PostgreSQL's `->>`: that decodes every string of the
/// document, and fails on a `\u0000` in any of them (a run's params may hold one), which would
/// fail the whole expiry, for every lost try, for good.
timestamp instance_start_in(const char* payload) {
  const json j = json::parse(payload, nullptr, false);
  if (!j.is_object()) return {};
  const auto it = j.find("instance_start");
  if (it == j.end() || !it->is_number_integer()) return {};
  return timestamp{std::chrono::microseconds(it->get<std::int64_t>())};
}

/// Whether a claim or expiry found nothing, and so changed nothing.
constexpr auto nothing_in = [](const auto& rows) { return rows.empty(); };

/// What a scheduler reads of a finished try's row.
std::string finished_columns() { return std::string(key_columns) + ", q.result"; }

// The notices that wake workers (a try was queued) and collectors (a try ended), sent at COMMIT,
// are raised by the statement that queues or ends the try (pg_notify), for each row it writes: a
// NOTIFY of its own was one more round trip to the server in every such transaction. PostgreSQL
// sends one `dagrun_queued` notice however many rows raised it (they are alike); a push's and an
// end's carry their try or end, one each; and none goes when the statement wrote no row (a try
// another scheduler queued already, a result whose lease was lost): no one to wake.

// One row alone: each hop of a chain of tries sends one try, acknowledges one end and completes
// one try. The forms for many rows are new statement texts (VALUES lists), which PostgreSQL
// plans at every call, or array parameters, whose plans guess a hundred rows a batch; for one
// row either plan costs more than running it. So one row goes by a prepared statement over
// scalar parameters, whose plan (index lookups by the key or the id) the plan cache keeps.

// Pushes. A try the step names a worker for (queued_try::worker: the worker whose end of the
// upstream try the same step records) is written claimed by that worker, with a fresh lease, if
// the worker is taking pushes (task_queue::accept_pushes): its session holds the advisory lock
// `worker_lock` names. Its notice goes to that worker alone (`push_channel`), which starts it
// without a claim of its own: the claim's round trips and its durable commit leave a chain's
// hop, and the other workers are not woken for a try they would not get. A worker that holds no
// such lock (it stopped taking pushes, its session ended, or it is an older dagrun) gets the try
// queued for anyone, as before. The check takes the worker's second key (`worker_exit_lock`)
// shared first, for the rest of the step's transaction: a worker that stops taking pushes lets
// go of the first key, then takes the second alone, which waits for every step that found it
// taking pushes to commit, and puts back the tries they pushed that it never started
// (refuse_pushes). Keys are hashes of the worker's name, in the bigint space of advisory locks.

/// The advisory lock a worker taking pushes holds on its session, for worker `w` (an SQL
/// expression of text).
std::string worker_lock(std::string_view w) { return "hashtextextended('dagrun worker ' || " + std::string(w) + ", 0)"; }
/// The second key: taken shared by a step that pushes to the worker, alone by a worker that stops.
std::string worker_exit_lock(std::string_view w) { return "hashtextextended('dagrun worker ' || " + std::string(w) + ", 1)"; }
/// The channel a worker's pushes notify (an SQL expression): `dagrun_w_` and its lock's key.
std::string push_channel(std::string_view w) { return "'dagrun_w_' || " + worker_lock(w); }

/// Of the workers in column `worker` of `rows` (NULL: none named), those taking pushes, as CTEs
/// `b` and `w` (see Pushes): the second key is taken first, in a CTE of its own, which the
/// check's scan makes run first.
std::string taking_pushes(std::string_view rows) {
  return "b AS (SELECT d.worker, pg_advisory_xact_lock_shared(" + worker_exit_lock("d.worker") +
         ") FROM (SELECT DISTINCT worker FROM " + std::string(rows) + " WHERE worker IS NOT NULL ORDER BY worker) d), "
         "w AS (SELECT worker FROM b WHERE NOT pg_try_advisory_xact_lock_shared(" + worker_lock("worker") + "))";
}

/// The columns of a try's row that a push sets, from `w.worker` (NULL: queued for anyone).
constexpr std::string_view pushed_columns = "state, lease_token, worker, heartbeat_at";
constexpr std::string_view pushed_values =
    "CASE WHEN w.worker IS NULL THEN 'queued' ELSE 'claimed' END, "
    "CASE WHEN w.worker IS NULL THEN NULL ELSE v.token END, w.worker, "
    "CASE WHEN w.worker IS NULL THEN NULL ELSE now() END";
/// The longest notice this queue sends, in bytes: PostgreSQL refuses a payload of 8,000 or more.
/// A longer one goes empty, and its reader reads the row (a push) or a take finds it (an end).
constexpr std::size_t notice_limit = 7900;

/// A fresh lease's token: 122 random bits as a version-4 UUID's text, like the claims'
/// `gen_random_uuid()`. A push's is made here, as its notice is (notice_of_row). Tokens tell a
/// current lease from a lost one; they are no secret (a worker reads the row's).
std::string new_lease_token() {
  thread_local std::mt19937_64 bits = [] {
    std::random_device seed;
    std::seed_seq seq{seed(), seed(), seed(), seed(), seed(), seed(), seed(), seed()};
    return std::mt19937_64(seq);
  }();
  const std::uint64_t words[2] = {(bits() & ~0xf000ULL) | 0x4000ULL, (bits() & ~(3ULL << 62)) | (2ULL << 62)};
  constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int n = 0; n < 32; ++n) {
    if (n == 8 || n == 12 || n == 16 || n == 20) out += '-';
    out += digits[(words[n / 16] >> (60 - 4 * (n % 16))) & 0xf];
  }
  return out;
}

/// A push's notice but for its leading `{"id":N,` (notice_of_row): the try's key, queue, claim and
/// payload, as read_push_notice reads them; empty when the notice would be too long.
std::string push_notice_rest(const queued_try& t, const std::string& token, const std::string& payload) {
  if (payload.size() + 26 >= notice_limit) return {};  // too long whatever the rest
  // The fields the statement's json_build_object wrote, with the text as the row holds it
  // (pg_text); written by hand.
  std::string rest;
  rest.reserve(payload.size() + 256);
  const auto text = [&rest](std::string_view name, std::string_view value) {
    rest += '"';
    rest += name;
    rest += "\":";
    append_json_string(rest, detail::pg_text(value));
    rest += ',';
  };
  const auto number = [&rest](std::string_view name, std::int64_t value) {
    rest += '"';
    rest += name;
    rest += "\":";
    rest += std::to_string(value);
    rest += ',';
  };
  text("dag_id", t.dag_id);
  text("run_id", t.run_id);
  text("task_id", t.task_id);
  number("try_number", t.try_number);
  number("map_index", t.map_index);
  text("queue", t.queue);
  number("priority", t.priority);
  text("lease_token", token);
  text("worker", t.worker);
  rest += "\"payload\":";
  rest += payload;
  rest += '}';
  // `{"id":`, at most 19 digits and `,` go before it.
  return rest.size() + 26 < notice_limit ? rest : std::string();
}

/// The notice a row queued (`i`, from its batch row `v`) raises: every worker's, or, pushed, its
/// worker's, which carries the try, payload and all (read_push_notice), so that the worker starts
/// it without reading it. The scheduler writes that notice but for the row's id (`v.rest`, made by
/// push_notice_rest), where the statement built it with `json_build_object` over the payload parsed
/// as `json`: a third of the enqueue's time, in the scheduler's step. One too long for a notice
/// (8,000 bytes) has an empty `v.rest` and carries nothing, and the worker reads the row
/// (pg_task_queue::pushed).
const std::string notice_of_row =
    "CASE WHEN i.worker IS NULL THEN pg_notify('dagrun_queued', '') ELSE pg_notify(" + push_channel("i.worker") +
    ", CASE WHEN v.rest = '' THEN '' ELSE '{\"id\":' || i.id || ',' || v.rest END) END";

/// A try and its payload; a try another scheduler queued already keeps its row (as below). It
/// returns a row when it queued the try (write_tries). $9: the worker to push it to, or NULL; $10, $11:
/// the push's lease token and its notice but for the id (push_notice_rest), NULL and ''
/// without a worker.
const std::string enqueue_one_sql =
    "WITH v AS (SELECT $9::text AS worker, $10::text AS token, $11::text AS rest), " + taking_pushes("v") + ", "
    "i AS (INSERT INTO dagrun_task_queue (dag_id, run_id, task_id, try_number, map_index, queue, priority, " +
    std::string(pushed_columns) + ") SELECT $1::text, $2::text, $3::text, $4::int, $5::int, $6::text, $7::int, " +
    std::string(pushed_values) + " FROM v LEFT JOIN w USING (worker) "
    "ON CONFLICT (dag_id, run_id, task_id, map_index, try_number) DO NOTHING RETURNING *), "
    "p AS (INSERT INTO dagrun_task_queue_payload (id, payload) SELECT i.id, $8::text FROM i) "
    "SELECT i.id, " + notice_of_row + " FROM i CROSS JOIN v";

/// The batch form of enqueue_one_sql, over one array per column (add_array_element): one
/// statement text whatever the batch's size, prepared once, where a list of VALUES was a new text
/// to parse and plan at every call. Its plan reads no table but through the unique key, whatever
/// the batch's size (in a 20,000-try run the plan cache kept one after six of 440 calls). Rows
/// are inserted in the batch's order (ids, and so claims within a priority, follow it). Another
/// scheduler may have queued the same try: the unique key keeps one, and only a row this
/// statement made gets a payload. It returns the keys of the tries it queued. $10, $11: each try's
/// lease token and notice if pushed, as in enqueue_one_sql.
const std::string enqueue_many_sql =
    "WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::text[], $7::int[], "
    "$8::text[], $9::text[], $10::text[], $11::text[]) WITH ORDINALITY AS v(dag_id, run_id, task_id, try_number, "
    "map_index, queue, priority, payload, worker, token, rest, n)), " + taking_pushes("v") + ", "
    "i AS (INSERT INTO dagrun_task_queue (dag_id, run_id, task_id, try_number, map_index, queue, priority, " +
    std::string(pushed_columns) + ") SELECT v.dag_id, v.run_id, v.task_id, v.try_number, v.map_index, v.queue, v.priority, " +
    std::string(pushed_values) + " FROM v LEFT JOIN w USING (worker) ORDER BY v.n "
    "ON CONFLICT (dag_id, run_id, task_id, map_index, try_number) DO NOTHING "
    "RETURNING *), "
    "p AS (INSERT INTO dagrun_task_queue_payload (id, payload) SELECT i.id, v.payload FROM i "
    "JOIN v USING (dag_id, run_id, task_id, map_index, try_number)) "
    "SELECT i.dag_id, i.run_id, i.task_id, i.map_index, i.try_number, " + notice_of_row +
    " FROM i JOIN v USING (dag_id, run_id, task_id, map_index, try_number)";



/// The acknowledgement of recorded ends whose ids meet `ids` (see send). Any end, taken or not:
/// the take of an end may still be running when its acknowledgement comes (the collector hands
/// ends on before its take commits), and a row its snapshot shows not taken must still be
/// deleted, once that take has ended (the DELETE waits for the row's lock, then checks the row
/// again); a take that did not commit is as good.
std::string acknowledge_sql(std::string_view ids) {
  return "WITH d AS (DELETE FROM dagrun_task_queue WHERE id " + std::string(ids) +
         " AND state = 'done' RETURNING id) "
         "DELETE FROM dagrun_task_queue_payload p USING d WHERE p.id = d.id";
}

/// The statement that forgets the ends `ids` (not empty; see acknowledge_sql), to send in a write
/// transaction on `conn`. Only an end: the id of a row is never reused, and the row is gone or
/// ended. Its payload, if any, goes with it: an end's payload is deleted with the end, but a worker
/// of format 2 that is still running after the upgrade ends a try it claimed before without
/// deleting the payload the upgrade moved. The ids, no secret, are written into its text.
std::string acknowledgement(detail::pg_connection& conn, const std::vector<std::int64_t>& ids) {
  if (ids.size() == 1)  // prepared, as enqueue_one_sql says why
    return conn.execute(acknowledge_sql("= $1::bigint"), {std::to_string(ids.front())});
  std::string array;
  for (const auto id : ids) detail::add_array_element(array, id);
  detail::close_array(array);
  return conn.execute(acknowledge_sql("= ANY($1::bigint[])"), {conn.quote(array)});
}

std::string result_of(const queued_result& r) {
  json j = detail::result_json(r.result);
  j["started"] = r.started.time_since_epoch().count();
  j["ended"] = r.ended.time_since_epoch().count();
  j["pid"] = r.pid;
  j["hostname"] = r.hostname;
  if (r.instance_start != timestamp{}) j["instance_start"] = r.instance_start.time_since_epoch().count();
  return json_dump(j);
}

queued_result read_result(const queued_try& t, const json& j) {
  queued_result out;
  out.id = t.id;
  out.lease_token = t.lease_token;
  out.result = detail::result_from_json(j);
  out.started = timestamp{std::chrono::microseconds(j.at("started").get<std::int64_t>())};
  out.ended = timestamp{std::chrono::microseconds(j.at("ended").get<std::int64_t>())};
  out.pid = j.at("pid").get<int>();
  out.hostname = j.at("hostname").get<std::string>();
  if (j.contains("instance_start"))  // not from workers older than the field: any poke
    out.instance_start = timestamp{std::chrono::microseconds(j.at("instance_start").get<std::int64_t>())};
  return out;
}


/// The notice a try's end raises (an SQL expression over the ended row `q` and the result's text
/// `result`): the end, key, claim and result, so that a scheduler hands it on without taking it
/// (read_end_notice); one too long for a notice (8,000 bytes) carries nothing, and a take finds it.
/// A result that alone is too long is not made into the notice's text first.
std::string end_notice(std::string_view result) {
  const std::string r(result), limit = std::to_string(notice_limit);
  return "pg_notify('dagrun_finished', CASE WHEN octet_length(" + r + ") >= " + limit + " THEN '' ELSE (SELECT CASE WHEN "
         "octet_length(n) < " + limit + " THEN n ELSE '' END FROM (SELECT "
         "json_build_object('id', q.id, 'dag_id', q.dag_id, 'run_id', q.run_id, 'task_id', q.task_id, 'try_number', "
         "q.try_number, 'map_index', q.map_index, 'queue', q.queue, 'priority', q.priority, 'lease_token', "
         "q.lease_token, 'worker', q.worker, 'result', (" + r + ")::json)::text AS n) x) END)";
}

/// A worker's end of one try, accepted only from its current lease (see complete).
const std::string complete_one_sql =
    "WITH u AS (UPDATE dagrun_task_queue q SET state = 'done', result = $3::text WHERE q.id = $1::bigint AND "
    "q.lease_token = $2::text AND q.state = 'claimed' RETURNING q.id, " + end_notice("$3::text") + "), "
    "d AS (DELETE FROM dagrun_task_queue_payload p USING u WHERE p.id = u.id) SELECT id FROM u";

/// An end as its notice carries it (end_notice). Throws on anything else.
finished_try read_end_notice(const std::string& text) {
  const json j = json::parse(text);
  finished_try f;
  f.item = read_key(j);
  f.outcome = read_result(f.item, j.at("result"));
  return f;
}

/// The batch form of pg_task_queue::complete: whether each result was accepted, in order.
std::vector<bool> complete_many(detail::pg_connection& conn, pqxx::transaction_base& tx,
                                const std::vector<queued_result>& results) {
  std::string values;
  for (const auto& r : results)
    values += (values.empty() ? "" : ",") + std::string("(") + std::to_string(r.id) + "::bigint," +
              conn.quote(r.lease_token) + "," + conn.quote(result_of(r)) + ")";
  // Only a current lease may finish its try: a stale worker's late result changes nothing.
  // Accepted by (row, token), not by row: a batch may carry one row twice, with the current
  // token and a stale one, and only the current one finished it. An ended try's payload is
  // deleted with the end: nothing reads it again.
  std::set<std::pair<std::int64_t, std::string>> accepted;
  for (const auto& row : conn.send(tx, "WITH u AS (UPDATE dagrun_task_queue q SET state = 'done', result = v.result FROM (VALUES " +
                                 values + ") AS v(id, token, result) WHERE q.id = v.id AND q.lease_token = v.token "
                                          "AND q.state = 'claimed' RETURNING q.id, v.token, " + end_notice("v.result") + "), "
                                          "d AS (DELETE FROM dagrun_task_queue_payload p USING u WHERE p.id = u.id) "
                                          "SELECT id, token FROM u"))
    accepted.emplace(row[0].as<std::int64_t>(), row[1].c_str());
  std::vector<bool> out;
  for (const auto& r : results) out.push_back(accepted.contains({r.id, r.lease_token}));
  return out;
}

try_key key_of(const queued_try& t) { return {t.dag_id, t.run_id, t.task_id, t.map_index, t.try_number}; }

/// Queues `tries` (no key twice) in `tx` on `conn`: the queue's own enqueue, or a store's write
/// that carries them (queue_attachment). By protocol parameters: their payloads may hold secrets,
/// which a statement's text must not. Returns the keys of the tries it queued: not those whose key
/// the queue holds already (another scheduler's copy, or a rescheduled sensor's poke whose end is
/// not acknowledged yet).
std::set<try_key> write_tries(detail::pg_connection& conn, pqxx::transaction_base& tx,
                              const std::vector<const queued_try*>& tries) {
  std::set<try_key> queued;
  if (tries.empty()) return queued;
  // The BEGIN, if nothing sent it yet. What the caller holds back after that may wait for the
  // COMMIT's message: the queue's acknowledgements, which must go before these rows (a sensor's
  // next poke has the key of the poke whose end goes), are held back only until the BEGIN
  // (queue_attachment::open runs before a store write's first statement) or sent on their own
  // (send), so they have gone by now either way; a store's held-back statements are one-row
  // deletes of its own tables.
  conn.begin(tx);
  if (tries.size() == 1) {  // prepared, as enqueue_one_sql says why
    const queued_try& t = *tries.front();
    // Text as PostgreSQL holds it (pg_text), as the batch form's arrays and the store have it.
    const std::optional<std::string> worker =
        t.worker.empty() ? std::nullopt : std::optional<std::string>(detail::pg_text(t.worker));
    const std::string payload = payload_of(t);
    const std::optional<std::string> token = worker ? std::optional<std::string>(new_lease_token()) : std::nullopt;
    const std::string rest = worker ? push_notice_rest(t, *token, payload) : std::string();  // UTF-8, no NUL
    if (!tx.exec_prepared(conn.prepared(enqueue_one_sql), detail::pg_text(t.dag_id), detail::pg_text(t.run_id),
                          detail::pg_text(t.task_id), t.try_number, t.map_index, detail::pg_text(t.queue), t.priority,
                          detail::pg_text(payload), worker, token, rest)
             .empty())
      queued.insert(key_of(t));
    return queued;
  }
  for (std::size_t start = 0; start < tries.size(); start += 500) {
    std::string dags, runs, tasks, numbers, maps, queues, priorities, payloads, workers, tokens, rests;
    for (std::size_t i = start; i < std::min(tries.size(), start + 500); ++i) {
      const auto& t = *tries[i];
      const std::string payload = payload_of(t);
      detail::add_array_element(dags, t.dag_id);
      detail::add_array_element(runs, t.run_id);
      detail::add_array_element(tasks, t.task_id);
      detail::add_array_element(numbers, t.try_number);
      detail::add_array_element(maps, t.map_index);
      detail::add_array_element(queues, t.queue);
      detail::add_array_element(priorities, t.priority);
      detail::add_array_element(payloads, payload);
      if (t.worker.empty()) {
        detail::add_array_null(workers);
        detail::add_array_null(tokens);
        detail::add_array_element(rests, std::string_view());
      } else {
        const std::string token = new_lease_token();
        detail::add_array_element(workers, t.worker);
        detail::add_array_element(tokens, token);
        detail::add_array_element(rests, push_notice_rest(t, token, payload));
      }
    }
    for (auto* a : {&dags, &runs, &tasks, &numbers, &maps, &queues, &priorities, &payloads, &workers, &tokens, &rests})
      detail::close_array(*a);
    for (const auto& row : tx.exec_prepared(conn.prepared(enqueue_many_sql), dags, runs, tasks, numbers, maps, queues,
                                            priorities, payloads, workers, tokens, rests))
      queued.emplace(row[0].c_str(), row[1].c_str(), row[2].c_str(), row[3].as<int>(), row[4].as<int>());
  }
  return queued;
}

/// A step's tries, queued by the store's write that records their starts, and its ends, forgotten
/// by it (see detail::queue_with_store).
class queue_attachment final : public detail::pg_write_attachment {
public:
  queue_attachment(std::string database, std::vector<queued_try> tries, std::vector<std::int64_t> acknowledged,
                   std::function<void(std::set<try_key>&&, std::vector<std::int64_t>&&)> committed)
      : database_(std::move(database)), tries_(std::move(tries)), acknowledged_(std::move(acknowledged)),
        committed_(std::move(committed)) {}

  const std::string& database() const override { return database_; }

  void open(detail::pg_connection& conn) override {
    // The ends first, as the queue's own enqueue orders them: a rescheduled sensor's next poke has
    // the key of the poke whose end goes. Sent with the BEGIN, no round trip of its own, and before
    // the store takes any row lock: the DELETE may wait for the take of those rows to end (a take
    // commits right after it has handed the ends on, without waiting for the disk, and itself
    // waits for no lock: SKIP LOCKED; one whose COMMIT is lost lingers until its collector's next
    // take, docs/reliability.md). The rows it deletes stay locked until the step commits: takes
    // skip them, and no one else changes an ended try's row; only another scheduler's insert of
    // the same key (its own copy of a sensor's next poke) waits for them, which in the worst case
    // is a deadlock PostgreSQL breaks, and the losing write is run again (pg_connection). A
    // transaction that sends this is always marked (the store's are), so that an in-doubt COMMIT
    // is settled, not run again.
    if (!acknowledged_.empty()) conn.send_later(acknowledgement(conn, acknowledged_));
  }

  void write(detail::pg_connection& conn, pqxx::transaction_base& tx,
             std::span<const task_instance_record* const> started) override {
    // Only the tries whose claims won: the others' starts are not recorded (another process
    // cleared or marked their run meanwhile), and their runs decide again from the store's view.
    std::set<try_key> won;
    for (const auto* r : started) won.emplace(r->dag_id, r->run_id, r->task_id, r->map_index, r->try_number);
    std::vector<const queued_try*> sent;
    for (const auto& t : tries_)
      if (won.erase(key_of(t)) == 1) sent.push_back(&t);  // once each, as first named
    // A try whose key the queue still holds is left to the owner (queue_executor::flush).
    written_ = write_tries(conn, tx, sent);
  }

  void committed() noexcept override {
    try {
      committed_(std::move(written_), std::move(acknowledged_));
    } catch (...) {
      // The owner's callback should not throw; if it does, the owner sends them again itself: the
      // queue keeps the row it has (ON CONFLICT; a try's row stays until its end is acknowledged),
      // and an end forgotten twice is deleted once.
    }
  }

private:
  std::string database_;
  std::vector<queued_try> tries_;
  std::vector<std::int64_t> acknowledged_;
  std::set<try_key> written_;  // by the attempt that ran last
  std::function<void(std::set<try_key>&&, std::vector<std::int64_t>&&)> committed_;
};

class pg_task_queue final : public task_queue {
public:
  using task_queue::enqueue;
  explicit pg_task_queue(const std::string& url) : conn_(detail::parse_postgres_url(url, "dagrun-queue")) {
    conn_.write("create the queue table", [&](pqxx::transaction_base& tx) {
      // The table is changed only when it is older than this dagrun: its statements lock the table
      // against every scheduler and worker, so a start that finds it current runs none of them.
      if (check_format(recorded_format(tx))) return;
      tx.exec("SELECT pg_advisory_xact_lock(727277)");  // concurrent first starts create it once
      if (check_format(recorded_format(tx))) return;
      tx.exec(schema_sql);
      tx.exec("CREATE TABLE IF NOT EXISTS dagrun_task_queue_format (format INT NOT NULL)");
      tx.exec("DELETE FROM dagrun_task_queue_format");
      tx.exec("INSERT INTO dagrun_task_queue_format (format) VALUES (" + std::to_string(queue_format) + ")");
    });
  }

  /// True when the queue is at this dagrun's format; throws when a newer dagrun has changed it.
  static bool check_format(int found) {
    if (found > queue_format)
      throw error("the task queue's format (" + std::to_string(found) + ") is newer than this dagrun's (" +
                  std::to_string(queue_format) + "): a newer dagrun uses this queue, and schedulers and workers "
                  "on one queue are upgraded together");
    return found == queue_format;
  }

  void enqueue(const std::vector<queued_try>& all_tries, const std::vector<std::int64_t>& acknowledged) override {
    if (all_tries.empty() && acknowledged.empty()) return;
    // The caller sends the tries of an enqueue that threw again (queue_executor::flush keeps
    // them until one succeeds). If that one threw with its COMMIT's outcome unknown and in fact
    // committed, its tries are in the queue, or were claimed, run and recorded meanwhile (their
    // ends may be among `acknowledged`): queued again, they would run twice. So that outcome is
    // settled first, and the tries it made are left out until an enqueue succeeds.
    if (in_doubt_attempt_ != 0) {
      if (conn_.settle("enqueue tries", in_doubt_attempt_).value_or(false)) made_.merge(in_doubt_);
      in_doubt_.clear();
      in_doubt_attempt_ = 0;
    }
    std::vector<queued_try> unmade;
    if (!made_.empty())
      for (const auto& t : all_tries)
        if (!made_.contains(key_of(t))) unmade.push_back(t);
    const std::vector<queued_try>& tries = made_.empty() ? all_tries : unmade;
    const std::int64_t unsettled_before = conn_.unsettled();  // another write's, if any
    try {
      if (!tries.empty() || !acknowledged.empty()) send(tries, acknowledged);
    } catch (...) {
      if (const std::int64_t attempt = conn_.unsettled(); attempt != 0 && attempt != unsettled_before) {
        for (const auto& t : tries) in_doubt_.insert(key_of(t));
        in_doubt_attempt_ = attempt;
      }
      throw;
    }
    if (!all_tries.empty()) made_.clear();  // the caller holds none of them any more (an acknowledgement alone: it may)
  }

  std::vector<queued_try> claim(const std::vector<std::string>& queues, int max, const std::string& worker) override {
    if (max <= 0 || queues.empty()) return {};
    auto claimed = claim_rows(queues, max, worker);
    if (!push_worker_.empty())
      for (const auto& t : claimed) handed_.emplace(t.lease_token, seen_claimed);  // not a push for `pushed` to hand out
    return claimed;
  }

  void accept_pushes(const std::string& worker) override {
    push_key_ = conn_.read("take pushes", [&](pqxx::transaction_base& tx) {
      return std::string(tx.exec_params1("SELECT " + worker_lock("$1::text") + "::text", detail::pg_text(worker))[0].c_str());
    });
    push_worker_ = worker;
    push_channel_ = "dagrun_w_" + push_key_;
    conn_.listen(push_channel_, true);
    hold_push_lock();
  }

  std::vector<queued_try> pushed(int max) override {
    if (push_worker_.empty() || max <= 0) return {};
    hold_push_lock();
    take_push_notices();
    const bool ask = look_for_pushes_ || looked_session_ != conn_.sessions() ||
                     std::chrono::steady_clock::now() - last_push_look_ >= push_look_every;
    if (!ask) {  // the notices carried them
      std::vector<queued_try> out;
      auto t = noticed_.begin();
      for (; t != noticed_.end() && static_cast<int>(out.size()) < max; ++t)
        if (handed_.emplace(t->lease_token, seen_claimed).second) out.push_back(std::move(*t));
      noticed_.erase(noticed_.begin(), t);
      return out;
    }
    noticed_.clear();  // the read finds them too
    // Every try claimed by this worker, pushed or claimed: what this object handed out before is
    // known by its token.
    const std::uint64_t session = conn_.sessions();  // listening there: a later one asks again
    auto rows = conn_.read("read pushed tries", [&](pqxx::transaction_base& tx) {
      std::vector<std::pair<std::string, std::optional<queued_try>>> out;  // token, and the try if not handed out
      for (const auto& row : tx.exec_params("SELECT " + std::string(key_columns) + ", p.payload FROM dagrun_task_queue q "
                                            "LEFT JOIN dagrun_task_queue_payload p ON p.id = q.id WHERE q.state = 'claimed' "
                                            "AND q.worker = $1::text ORDER BY q.priority DESC, q.id",
                                            detail::pg_text(push_worker_))) {
        std::string token = row["lease_token"].c_str();
        const bool readable = !handed_.contains(token) && !row["payload"].is_null();  // one without: never started here
        out.emplace_back(std::move(token), readable ? std::optional<queued_try>(read_try(row)) : std::nullopt);
      }
      return out;
    });
    looked_session_ = session;
    const auto now = std::chrono::steady_clock::now();
    last_push_look_ = now;
    std::set<std::string> still;
    std::vector<queued_try> out;
    look_for_pushes_ = false;
    for (auto& [token, t] : rows) {
      still.insert(token);
      if (!t) continue;
      if (static_cast<int>(out.size()) == max) {
        look_for_pushes_ = true;  // more than asked for: the next call looks again
        continue;
      }
      out.push_back(std::move(*t));
    }
    // A token is forgotten once its row has not been claimed for a while: an end the worker
    // committed without waiting for the disk may yet be undone by a crash of the server (and its
    // row be claimed by this worker again, under the same token) until a durable commit, which the
    // worker makes within a second; forgotten sooner, that try would be handed out again.
    for (auto it = handed_.begin(); it != handed_.end();) {
      if (still.contains(it->first)) {
        it->second = seen_claimed;
      } else if (it->second == seen_claimed) {
        it->second = now;
      } else if (now - it->second >= forget_handed_after) {
        it = handed_.erase(it);
        continue;
      }
      ++it;
    }
    for (const auto& t : out) handed_.emplace(t.lease_token, seen_claimed);
    return out;
  }

  bool pushes_waiting() const override {
    return !push_worker_.empty() && (!noticed_.empty() || look_for_pushes_ || looked_session_ != conn_.sessions());
  }

  int put_back_pushes() override {
    if (push_worker_.empty()) return 0;
    take_push_notices();
    if (!pushes_waiting()) return 0;
    const std::uint64_t session = conn_.sessions();  // a later one may have missed notices: looked at again
    const int back = put_back(push_worker_, {}, false);
    noticed_.clear();
    look_for_pushes_ = false;
    looked_session_ = session;
    return back;
  }

  int refuse_pushes(const std::vector<std::string>& unstarted) override {
    if (push_worker_.empty()) return 0;
    // The lock goes first, so that no step finds this worker taking pushes from now on (a session
    // of ours that broke and lingers on the server is ended: it may hold it still); then the
    // second key, alone, once every step that found it taking pushes has committed (see Pushes).
    conn_.read("stop taking pushes", [&](pqxx::transaction_base& tx) {
      if (lock_session_ == conn_.sessions()) tx.exec("SELECT pg_advisory_unlock_all()");
      tx.exec(end_other_holders());
    });
    lock_session_ = 0;
    const int back = put_back(push_worker_, unstarted, true);
    push_worker_.clear();
    noticed_.clear();
    return back;
  }

private:
  /// How often `pushed` asks the server though no notice came (one lost with a session).
  static constexpr auto push_look_every = std::chrono::seconds(5);
  /// handed_'s mark of a token whose row was claimed when last seen (or was just handed out).
  static constexpr std::chrono::steady_clock::time_point seen_claimed{};
  /// How long a handed-out token is kept once its row is seen no longer claimed.
  static constexpr auto forget_handed_after = std::chrono::seconds(30);
  /// Pushed tries or ends read from notices and kept: past this, they are read instead.
  static constexpr std::size_t max_noticed = 1000;
  /// The channel of ends' notices (complete).
  static constexpr const char* end_channel = "dagrun_finished";

  /// Reads the ends' notices the connection received into noticed_ends_ (see noticed_ends).
  void take_end_notices() {
    auto n = conn_.take_notices(end_channel);
    if (!n.all || noticed_ends_.size() + n.payloads.size() > max_noticed) ends_unnoticed_ = true;
    if (noticed_ends_.size() + n.payloads.size() > max_noticed) return;
    for (const auto& text : n.payloads) {
      try {
        noticed_ends_.push_back(read_end_notice(text));
      } catch (const std::exception&) {
        ends_unnoticed_ = true;  // too long for a notice (empty), or not ours: a take finds it
      }
    }
  }

  /// Reads the pushes' notices the connection received: the tries they carry wait in noticed_;
  /// one that carries none (too long), or more notices than the connection keeps, make `pushed`
  /// read them all.
  void take_push_notices() {
    auto n = conn_.take_notices(push_channel_);
    if (push_worker_.empty()) return;  // no longer taking pushes: nothing to hand out
    if (!n.all || noticed_.size() + n.payloads.size() > max_noticed) look_for_pushes_ = true;
    if (look_for_pushes_) return;
    for (const auto& text : n.payloads) {
      try {
        noticed_.push_back(read_push_notice(text));
      } catch (const std::exception&) {
        look_for_pushes_ = true;  // too long for a notice (empty), or not ours: read
      }
    }
  }

  /// Takes the lock that says this worker takes pushes on the current session, unless it holds
  /// it there already. Another session may hold it: a scheduler's step that found this worker not
  /// taking pushes, shared, until it commits; or a session of ours that broke and lingers on the
  /// server (the worker's name is its process's alone), which is ended. Then it is asked again at
  /// the next call.
  void hold_push_lock() {
    if (push_worker_.empty() || (lock_session_ != 0 && lock_session_ == conn_.sessions())) return;
    if (conn_.read("take pushes", [&](pqxx::transaction_base& tx) {
          if (tx.exec("SELECT pg_try_advisory_lock(" + push_key_ + "::bigint)")[0][0].as<bool>()) return true;
          tx.exec(end_other_holders());
          return false;
        }))
      lock_session_ = conn_.sessions();
  }

  /// The statement that ends the other sessions holding this worker's lock alone: ours, broken.
  std::string end_other_holders() const {
    // One waiting for a synchronous standby's confirmation of a COMMIT is spared, as
    // pg_connection spares its own: ended, it would count on the primary alone.
    return "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
           "WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = "
           "current_database()) AND l.classid = ((" + push_key_ + "::bigint >> 32) & 4294967295)::oid AND l.objid = (" +
           push_key_ + "::bigint & 4294967295)::oid AND l.objsubid = 1 AND l.mode = 'ExclusiveLock' AND l.granted AND "
           "l.pid <> pg_backend_pid() AND a.wait_event IS DISTINCT FROM 'SyncRep'";
  }

  /// Puts back in the queue, for anyone, the tries pushed to `worker` that this object has not
  /// handed out, and those of `unstarted`; after the second key (`barrier`: see refuse_pushes).
  /// Their tokens join handed_, spent: a notice of one of them read after this (it may have come
  /// before, unread) must not hand it out.
  int put_back(const std::string& worker, const std::vector<std::string>& unstarted, bool barrier) {
    const std::set<std::string> left(unstarted.begin(), unstarted.end());
    const auto spent = conn_.write("put back pushed tries", [&](pqxx::transaction_base& tx) {
      std::string handed;
      for (const auto& [token, seen] : handed_)
        if (!left.contains(token)) detail::add_array_element(handed, token);
      detail::close_array(handed);
      if (barrier) tx.exec("SELECT pg_advisory_xact_lock(" + worker_exit_lock(tx.quote(detail::pg_text(worker))) + ")");
      std::vector<std::string> tokens;
      for (const auto& row : tx.exec_params(
               "WITH o AS (SELECT id, lease_token FROM dagrun_task_queue WHERE state = 'claimed' AND worker = $1::text "
               "AND lease_token <> ALL($2::text[]) FOR UPDATE), "
               "r AS (UPDATE dagrun_task_queue q SET state = 'queued', lease_token = NULL, worker = NULL, heartbeat_at = NULL "
               "FROM o WHERE q.id = o.id RETURNING o.lease_token, pg_notify('dagrun_queued', '')) "
               "SELECT lease_token FROM r",
               detail::pg_text(worker), handed))
        tokens.emplace_back(row[0].c_str());
      return tokens;
    });
    const auto now = std::chrono::steady_clock::now();
    for (const auto& token : spent) handed_.insert_or_assign(token, now);
    return static_cast<int>(spent.size());
  }

  std::vector<queued_try> claim_rows(const std::vector<std::string>& queues, int max, const std::string& worker) {
    // A claim that finds nothing (each worker asks after every end it reports, and on every
    // notice) changes nothing, and commits without a mark (pg_connection::write_joined).
    return conn_.write_joined("claim tries", [&](pqxx::transaction_base& tx) {
      // The queues, the worker and the limit are written into the statement, which a worker
      // prepares once for each limit it uses (at most its concurrency): `queue IN ('default')` is
      // an equality the `ready` index returns in priority order, where `queue = ANY($1)` would
      // sort every queued row, and a generic plan for `LIMIT $1` may be another plan. The CTE
      // bounds the claim: the planner cannot lock more rows than the LIMIT. The payload is read
      // from its own table by the claimed rows' ids (see schema_sql).
      std::string in;
      for (const auto& q : queues) in += (in.empty() ? "" : ",") + conn_.quote(q);
      const std::string sql =
          "WITH c AS (SELECT id FROM dagrun_task_queue WHERE state = 'queued' AND queue IN (" + in +
          ") ORDER BY priority DESC, id LIMIT " + std::to_string(max) + " FOR UPDATE SKIP LOCKED) "
          "UPDATE dagrun_task_queue q SET state = 'claimed', lease_token = gen_random_uuid()::text, worker = " +
          conn_.quote(worker) + ", heartbeat_at = now() FROM c JOIN dagrun_task_queue_payload p ON p.id = c.id WHERE q.id = c.id "
          "RETURNING " + std::string(key_columns) + ", p.payload";
      std::vector<queued_try> out;
      for (const auto& row : conn_.send(tx, conn_.execute(sql))) out.push_back(read_try(row));
      return out;
    }, nothing_in);
  }

public:
  std::vector<std::string> heartbeat(const std::vector<std::string>& tokens) override {
    if (tokens.empty()) return {};
    return conn_.write_if_changed("renew leases", [&](pqxx::transaction_base& tx) {
      std::string in;
      for (const auto& t : tokens) in += (in.empty() ? "" : ",") + tx.quote(t);
      std::set<std::string> alive;
      for (const auto& row : tx.exec("UPDATE dagrun_task_queue SET heartbeat_at = now() WHERE state = 'claimed' AND "
                                     "lease_token IN (" + in + ") RETURNING lease_token"))
        alive.insert(row[0].c_str());
      std::vector<std::string> lost;
      for (const auto& t : tokens)
        if (!alive.contains(t)) lost.push_back(t);
      return lost;
    }, [&](const std::vector<std::string>& lost) { return lost.size() == tokens.size(); });
  }

  std::vector<bool> complete(const std::vector<queued_result>& results) override {
    if (results.empty()) return {};
    send_again_lost();
    auto out = write_results(results);
    unflushed_.push_back({results, conn_.sessions()});  // the session it committed in
    try {
      send_again_lost();  // the write may have found the session ended: the older ones go again now
    } catch (const std::exception&) {
      // Kept: the next call writes them again (these results are accepted and held already).
    }
    return out;
  }

  std::size_t unflushed() const override {
    std::size_t n = 0;  // a group or two: each call's, until the reporter confirms them
    for (const auto& u : unflushed_) n += u.results.size();
    return n;
  }

  void confirm() override {
    // A durable commit on the session the results committed in makes them durable too (WAL is
    // flushed in order, and a synchronous standby confirms it in order). One that reconnected
    // made nothing of the old session's durable: the server may have crashed meanwhile.
    while (!unflushed_.empty()) {
      send_again_lost();
      const std::uint64_t session = conn_.sessions();
      const std::size_t held = unflushed_.size();
      conn_.write_joined("make results durable", [&](pqxx::transaction_base&) {
        // A statement of no effect, for the transaction's one message (BEGIN, it, the mark and a
        // COMMIT that waits for the disk): the mark is the write that makes the COMMIT durable.
        conn_.send_later("SELECT 1");
        return true;
      }, [](bool) { return false; });
      if (conn_.sessions() != session) continue;  // sent again on the new session, then asked again
      unflushed_.erase(unflushed_.begin(), unflushed_.begin() + static_cast<std::ptrdiff_t>(held));
    }
  }

  using task_queue::take_finished;
  std::vector<finished_try> take_finished(int max, std::chrono::milliseconds stale_after,
                                          const std::function<void(const std::vector<finished_try>&)>& read) override {
    if (max <= 0) return {};
    ends_unnoticed_ = false;  // it finds them
    // A take spares work and guards nothing (see task_queue::take_finished): its COMMIT neither
    // waits for the disk nor carries a mark, and the ends are handed on before it is sent, so that
    // a chain's next step does not wait for it (pg_connection::write_relaxed).
    return conn_.write_relaxed("take finished tries", [&](pqxx::transaction_base& tx) {
      // Taken, not deleted: the row stays until the scheduler acknowledges the end as recorded,
      // so a scheduler (or database) crash in between loses nothing. A row taken and left
      // unacknowledged for `stale_after` (its scheduler died) is taken again, by anyone. Taking
      // sets only taken_at (see schema_sql): an update in place. Taken ends stay in the `done`
      // index until acknowledged, and each take steps over them: normally the ends of one step;
      // while no step can commit they pile up, and so does this cost. The CTE keeps the planner on the
      // `done` index (`id IN (subquery)` may hash-join the whole table), and so do the limits
      // written into the statement, which a collector prepares once: with `LIMIT $1` the
      // planner's generic plan may walk the primary key through every row in id order instead.
      const std::string sql =
          "WITH c AS (SELECT id FROM dagrun_task_queue WHERE state = 'done' AND (taken_at IS NULL OR taken_at < now() - "
          "interval '1 millisecond' * " + std::to_string(stale_after.count()) + ") ORDER BY id LIMIT " +
          std::to_string(max) + " FOR UPDATE SKIP LOCKED) "
          "UPDATE dagrun_task_queue q SET taken_at = now() FROM c WHERE q.id = c.id RETURNING " + finished_columns();
      std::vector<finished_try> out;
      for (const auto& row : conn_.send(tx, conn_.execute(sql))) {
        finished_try f;
        f.item = read_key(row);
        f.outcome = read_result(f.item, json::parse(row["result"].c_str()));
        out.push_back(std::move(f));
      }
      if (read && !out.empty()) read(out);
      return out;
    });
  }

  std::vector<finished_try> expire_leases(std::chrono::milliseconds lease) override {
    return conn_.write_if_changed("expire leases", [&](pqxx::transaction_base& tx) {
      std::vector<finished_try> out;
      const std::string ms = "interval '1 millisecond' * " + std::to_string(lease.count());
      // A lost try becomes a taken end holding its failure, acknowledged like any end. A server
      // that (re)started less than a lease ago has not given workers a lease to renew in: their
      // heartbeats were stopped by the outage, not by their death. A worker may also notice the
      // server back only up to max_retry_delay after its start (the pause before its next
      // attempt): that is added to the lease the server must have been up for.
      // Its payload (read for the poke it names) is deleted with it, as a worker's end deletes it.
      const std::string since_start =
          "interval '1 millisecond' * " + std::to_string((lease + detail::max_retry_delay).count());
      const auto rows = tx.exec("WITH e AS (UPDATE dagrun_task_queue q SET state = 'done', taken_at = now() WHERE id IN "
                                "(SELECT id FROM dagrun_task_queue WHERE state = 'claimed' AND heartbeat_at < now() - " +
                                ms + " AND pg_postmaster_start_time() < now() - " + since_start +
                                " FOR UPDATE SKIP LOCKED) RETURNING " + finished_columns() + "), "
                                "d AS (DELETE FROM dagrun_task_queue_payload p USING e WHERE p.id = e.id RETURNING p.id, p.payload) "
                                "SELECT e.*, d.payload FROM e LEFT JOIN d ON d.id = e.id");
      for (const auto& row : rows) {
        finished_try f;
        f.item = read_key(row);
        f.outcome.id = f.item.id;
        if (!row["payload"].is_null()) f.outcome.instance_start = instance_start_in(row["payload"].c_str());
        f.outcome.lease_token = f.item.lease_token;
        f.outcome.result = operator_result::failed("worker lost: '" + f.item.worker + "' stopped renewing its lease");
        f.outcome.result.exit_code = -1;
        // Ended when found lost (as Airflow's zombie handling); started when its scheduler started
        // it, as its task instance says, so that the try keeps its span (0 when not known).
        f.outcome.ended = std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
        f.outcome.started = f.outcome.instance_start != timestamp{} ? std::min(f.outcome.instance_start, f.outcome.ended)
                                                                    : f.outcome.ended;
        out.push_back(std::move(f));
      }
      // Tell the result apart from a worker's, should the row be taken again after a crash.
      for (const auto& f : out)
        tx.exec("UPDATE dagrun_task_queue SET result = " + tx.quote(result_of(f.outcome)) +
                " WHERE id = " + std::to_string(f.item.id));
      return out;
    }, nothing_in);
  }

  using task_queue::wait;
  bool wait(const std::string& channel, std::chrono::milliseconds max, std::stop_token stop) override {
    hold_push_lock();
    if (channel == "finished") conn_.listen(end_channel, true);  // their ends with them
    const bool came = conn_.wait("dagrun_" + channel, max, std::move(stop));
    if (!push_channel_.empty()) take_push_notices();  // read, even when no longer taking pushes: no wait ends for them again
    if (channel == "finished") take_end_notices();
    return came;
  }

  std::vector<finished_try> noticed_ends() override { return std::exchange(noticed_ends_, {}); }
  bool ends_unnoticed() const override { return ends_unnoticed_; }

  std::set<try_key> pending_keys() override {
    return conn_.read("list queued tries", [&](pqxx::transaction_base& tx) {
      std::set<try_key> out;
      for (const auto& row : tx.exec("SELECT dag_id, run_id, task_id, map_index, try_number FROM dagrun_task_queue"))
        out.emplace(row[0].c_str(), row[1].c_str(), row[2].c_str(), row[3].as<int>(), row[4].as<int>());
      return out;
    });
  }

  std::map<std::string, int> counts_by_dag() override {
    return conn_.read("count queued tries", [&](pqxx::transaction_base& tx) {
      std::map<std::string, int> out;
      for (const auto& row : tx.exec("SELECT dag_id, count(*) FROM dagrun_task_queue GROUP BY dag_id"))
        out[row[0].c_str()] = row[1].as<int>();
      return out;
    });
  }

  std::pair<std::int64_t, std::int64_t> counts() override {
    return conn_.read("count queue rows", [&](pqxx::transaction_base& tx) {
      auto r = tx.exec1("SELECT count(*) FILTER (WHERE state = 'queued'), count(*) FILTER (WHERE state = 'claimed') "
                        "FROM dagrun_task_queue");
      return std::pair<std::int64_t, std::int64_t>{r[0].as<std::int64_t>(), r[1].as<std::int64_t>()};
    });
  }

private:
  /// Results written by a commit that did not wait for the disk, and the session it was made in.
  struct unflushed_results {
    std::vector<queued_result> results;
    std::uint64_t session;
  };

  /// Records `results` in a transaction whose COMMIT does not wait for the disk: a chain's next
  /// step waits for this commit, and the scheduler's durable commit that records these ends (the
  /// store's step, or the acknowledgement of the ends), later in the server's log, makes it
  /// durable before anything is built on it. Until `confirm`, this object keeps them (`unflushed_`).
  std::vector<bool> write_results(const std::vector<queued_result>& results) {
    return conn_.write_unflushed("complete tries", [&](pqxx::transaction_base& tx) {
      std::vector<bool> out;
      if (results.size() == 1) {  // prepared, as enqueue_one_sql says why
        const auto& r = results.front();
        out.push_back(!conn_.send(tx, conn_.execute(complete_one_sql, {std::to_string(r.id), conn_.quote(r.lease_token),
                                                                          conn_.quote(result_of(r))}))
                           .empty());
      } else {
        out = complete_many(conn_, tx, results);
      }
      return out;
    }, [](const auto&) { return false; });
  }

  /// Writes again the results of sessions that ended before a durable commit confirmed them: a
  /// server crash may have undone them. One that was not undone is refused now (its lease token
  /// is spent), and one whose try was taken and acknowledged meanwhile finds no row: neither
  /// changes anything.
  void send_again_lost() {
    while (!unflushed_.empty()) {
      const std::uint64_t session = conn_.sessions();
      std::vector<queued_result> again;
      for (const auto& u : unflushed_)
        if (u.session != session) again.insert(again.end(), u.results.begin(), u.results.end());
      if (again.empty()) return;
      write_results(again);  // throws with unflushed_ as it was
      std::vector<unflushed_results> kept;  // built whole before it replaces unflushed_: nothing dropped on a throw
      for (auto& u : unflushed_)
        if (u.session == session) kept.push_back(u);
      kept.push_back({std::move(again), conn_.sessions()});
      unflushed_.swap(kept);
    }
  }

  /// Forgets `acknowledged` ends and adds `tries`, in one transaction (see enqueue).
  void send(const std::vector<queued_try>& tries, const std::vector<std::int64_t>& acknowledged) {
    conn_.write_joined(tries.empty() ? "acknowledge recorded tries" : "enqueue tries", [&](pqxx::transaction_base& tx) {
      // The acknowledgement (ids only) goes with the BEGIN (pg_connection::write_joined); the tries
      // by protocol parameters: their payloads may hold secrets, which a statement's text must not.
      if (!acknowledged.empty()) conn_.send(tx, acknowledgement(conn_, acknowledged));
      if (tries.empty()) return;
      // A try named twice is sent once, as first named: its row and its payload must agree.
      std::vector<const queued_try*> unique;
      unique.reserve(tries.size());
      std::set<try_key> seen;
      for (const auto& t : tries)
        if (seen.insert(key_of(t)).second) unique.push_back(&t);
      write_tries(conn_, tx, unique);
    }, [](const auto&...) { return false; });
  }

  detail::pg_connection conn_;  // every operation retried as pg_connection describes
  // Pushes (accept_pushes), on conn_'s session:
  std::string push_worker_;             // the worker taking pushes (empty: none, or no more)
  std::string push_key_;                // its lock's key, as text (worker_lock)
  std::string push_channel_;            // the channel its pushes notify
  std::uint64_t lock_session_ = 0;      // the session holding its lock (0: none)
  std::uint64_t looked_session_ = 0;    // the session `pushed` last asked on
  bool look_for_pushes_ = true;         // `pushed` must ask the server: a notice carried no try, or too many came
  std::vector<queued_try> noticed_;     // pushed tries their notices carried, not handed out yet
  // Ends by notices (a scheduler's collector):
  std::vector<finished_try> noticed_ends_;  // ends their notices carried, until noticed_ends
  bool ends_unnoticed_ = false;            // a notice since the last take did not carry its end
  std::chrono::steady_clock::time_point last_push_look_{};
  // Lease tokens handed out (claim, pushed), and since when their rows are seen no longer claimed
  // (seen_claimed: they were claimed when last seen).
  std::map<std::string, std::chrono::steady_clock::time_point> handed_;
  std::set<try_key> in_doubt_;          // the tries of an enqueue that threw with its outcome unknown…
  std::int64_t in_doubt_attempt_ = 0;  // …and its write attempt (pg_connection::unsettled)
  std::set<try_key> made_;             // tries an enqueue that threw in fact queued
  std::vector<unflushed_results> unflushed_;  // results given to complete that no durable commit confirmed yet
};

}  // namespace

std::unique_ptr<task_queue> open_task_queue(const std::string& url) { return std::make_unique<pg_task_queue>(url); }

namespace detail {

std::string queue_database(const std::string& url) { return parse_postgres_url(url, "dagrun-queue").identity; }

std::shared_ptr<write_attachment> queue_with_store(
    std::string database, std::vector<queued_try> tries, std::vector<std::int64_t> acknowledged,
    std::function<void(std::set<try_key>&&, std::vector<std::int64_t>&&)> committed) {
  return std::make_shared<queue_attachment>(std::move(database), std::move(tries), std::move(acknowledged),
                                            std::move(committed));
}

}  // namespace detail

}  // namespace dag
