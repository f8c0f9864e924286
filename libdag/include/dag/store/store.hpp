#pragma once
/// @file The metadata store: everything persistent goes through this one interface, which the
/// SQLite and PostgreSQL stores implement (over one core) and one test suite checks on both.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <dag/core/connection.hpp>
#include <dag/core/states.hpp>
#include <dag/core/time.hpp>
#include <dag/schedule/timetable.hpp>

namespace dag {

/// The name of a run type as in Airflow run ids (`scheduled`, `manual`, `backfill`).
std::string_view to_string(run_type t);
/// Parses a run type name; nullopt when unknown.
std::optional<run_type> parse_run_type(std::string_view name);
/// Airflow's run id: `scheduled__2024-01-01T00:00:00+00:00`, `manual__…`, `backfill__…`.
std::string make_run_id(run_type t, time_point logical_date);

/// One DAG run.
struct run_record {
  std::string dag_id;                          ///< its DAG
  std::string run_id;                          ///< unique within the DAG
  run_type type = run_type::scheduled;         ///< how it was created
  run_state state = run_state::queued;         ///< its state
  time_point logical_date{};                   ///< its logical date
  data_interval interval{};                    ///< its data interval
  std::optional<timestamp> start_date;         ///< when it started running
  std::optional<timestamp> end_date;           ///< when it finished
  std::string conf = "{}";                     ///< `--conf` JSON given when triggered
  std::string note;                            ///< a person's note on the run (Airflow's `note`), "" for none
};

/// One task instance: a task in a run, with the state of its latest try.
struct task_instance_record {
  std::string dag_id;                      ///< its DAG
  std::string run_id;                      ///< its run
  std::string task_id;                     ///< its task
  task_state state = task_state::none;     ///< current state
  int try_number = 0;                      ///< tries started so far (the current try when running)
  std::optional<timestamp> start_date;     ///< start of the latest try
  std::optional<timestamp> end_date;       ///< end of the latest try
  std::optional<timestamp> retry_at;       ///< when an `up_for_retry` task may run again
  std::optional<int> exit_code;            ///< exit status of the latest try, where there is one
  std::string hostname;                    ///< host of the latest try
  int pid = 0;                             ///< process of the latest try (0 for in-process tasks)
  std::string log_path;                    ///< log file of the latest try
  std::string message;                     ///< why the latest try failed or was skipped
  /// While a try is rescheduled (a sensor in reschedule mode between pokes, and its later
  /// executions): when its first execution started. Unset otherwise.
  std::optional<timestamp> first_start_date;
  /// Tries made before the task instance was last cleared: they do not count against `retries`,
  /// so a cleared task gets its retries back (Airflow raises max_tries for the same effect).
  int cleared_tries = 0;
  /// A person's note on the task instance (Airflow's `note`), "" for none. Read with the record,
  /// written only by store::set_note: a scheduler writing back its copy of the record never undoes it.
  std::string note;
  /// The pool the latest try took its slots from, and how many: a try `queued` or `running`
  /// occupies them (the scheduler sets both from the task when it starts a try).
  std::string pool = "default_pool";
  int pool_slots = 1;  ///< slots of `pool` the try takes
  /// The queue the latest try was sent to (its task's `queue` when it started), "" before any try.
  std::string queue;
  /// The executor that ran the latest try (executor::name(): `LocalExecutor`, `QueueExecutor`), ""
  /// before any try or for an executor without a name.
  std::string executor;
  /// Which instance of a mapped task (dynamic task mapping) this is, from 0; -1 for a task that is
  /// not mapped, or a mapped one not expanded yet (Airflow's map_index).
  int map_index = -1;
};

/// One try of a task instance, kept for ever (until `db clean`): every try has its own log and status.
struct try_record {
  std::string dag_id;                      ///< its DAG
  std::string run_id;                      ///< its run
  std::string task_id;                     ///< its task
  int try_number = 1;                      ///< 1 for the first try
  task_state state = task_state::running;  ///< running, success, failed, up_for_retry, up_for_reschedule or skipped
  std::optional<timestamp> start_date;     ///< when it started
  std::optional<timestamp> end_date;       ///< when it ended
  std::optional<int> exit_code;            ///< exit status where there is one
  std::string hostname;                    ///< where it ran
  int pid = 0;                             ///< its process (0 for in-process tasks)
  std::string log_path;                    ///< its log file
  std::string message;                     ///< why it failed or was skipped
  int map_index = -1;                      ///< its task instance's map index (-1: not mapped)

  bool operator==(const try_record&) const = default;
};

/// The record of the try a task instance is on (its number, state, times, host and log). A
/// rescheduled try's record spans every execution: it starts with the first.
inline try_record try_record_of(const task_instance_record& ti) {
  return {ti.dag_id,    ti.run_id,   ti.task_id, ti.try_number, ti.state,   ti.first_start_date ? ti.first_start_date : ti.start_date,
          ti.end_date,  ti.exit_code, ti.hostname, ti.pid,     ti.log_path, ti.message,   ti.map_index};
}

/// A value a task pushed for later tasks of the same run.
struct xcom_record {
  std::string dag_id;                      ///< its DAG
  std::string run_id;                      ///< its run
  std::string task_id;                     ///< the task that pushed it
  std::string key = "return_value";        ///< its key
  std::string value;                       ///< its value (text; JSON for SQL results)
  int map_index = -1;                      ///< the pushing instance's map index (-1: not mapped)
};

/// What `xcom_pull` of a mapped task reads: the values its instances pushed, as a JSON list in
/// map index order (a value that is JSON stays JSON, other text becomes a JSON string). `rows` are
/// one key's values of one task.
std::string mapped_xcom_list(std::vector<xcom_record> rows);

/// A DAG file that failed to load, as `dagrun dags list` and `/health` report it.
struct import_error_record {
  std::string file;     ///< the file
  std::string message;  ///< `file:line: message`
};

/// One entry of the event log: a change someone made (trigger, clear, mark, pause, a variable set
/// …), with who made it — Airflow's audit log (`/api/v1/eventLogs`).
struct event_record {
  std::int64_t id = 0;   ///< drawn by the store when written (increasing)
  timestamp when{};      ///< when it was made
  std::string event;     ///< what was done, e.g. `trigger`, `clear`, `variable.set`
  std::string owner;     ///< who did it (a user name, `token`, or `anonymous` on loopback)
  std::string dag_id;    ///< the DAG it concerns, "" for none
  std::string run_id;    ///< the run it concerns, "" for none
  std::string task_id;   ///< the task it concerns, "" for none
  std::string extra;     ///< details (JSON text), "" for none
  /// Of an entry about one task instance (marking it, its note): its map index (-1: a task not
  /// mapped) and the try it was on; unset for other entries.
  std::optional<int> map_index = std::nullopt;
  std::optional<int> try_number = std::nullopt;  ///< see map_index
};

/// A listing's order (Airflow's `order_by`): one of the listing's sort fields, each listing naming
/// its own; ties, and no field at all, in the listing's own order. An unset time (or a duration of
/// an instance not ended) sorts before every value, so it comes first ascending and last descending.
/// A field the listing does not know is a dag::usage_error.
struct listing_order {
  std::string field;        ///< the sort field, "" for the listing's own order
  bool descending = false;  ///< largest first
};

/// Which event log entries to list (every field set must match), in which order, which page.
struct event_filter {
  std::optional<std::string> dag_id;   ///< only this DAG
  std::optional<std::string> run_id;   ///< only this run
  std::optional<std::string> task_id;  ///< only this task
  std::optional<std::string> event;    ///< only this event
  std::optional<std::string> owner;    ///< only this owner
  std::optional<timestamp> after;      ///< made at or after
  std::optional<timestamp> before;     ///< made at or before
  std::optional<int> map_index;        ///< only entries about a task instance with this map index
  std::optional<int> try_number;       ///< only entries about a task instance on this try
  std::set<std::string> events;        ///< only these events (empty: any)
  std::set<std::string> not_events;    ///< none of these events
  /// Sort fields: id, when, event, owner, dag_id, run_id, task_id; own order: newest (highest id) first.
  listing_order order;
  std::size_t limit = 0;               ///< at most this many (0: all)
  std::size_t offset = 0;              ///< skipping this many first, in the listing's order
};

/// The pool every task is in unless it names another (Airflow's), with its initial slots.
inline constexpr std::string_view default_pool_name = "default_pool";
inline constexpr int default_pool_slots = 128;

/// A pool: a named number of slots that the tries of every DAG taking it share (Airflow's pools).
/// A try takes its task's `pool_slots` while it is queued or running.
struct pool_record {
  std::string name;         ///< unique name
  int slots = 0;            ///< slots in all (at least 0)
  std::string description;  ///< free text, "" for none
  int running_slots = 0;    ///< read only: slots taken by running tries
  int queued_slots = 0;     ///< read only: slots taken by queued tries
  /// Slots taken (running and queued).
  int occupied_slots() const { return running_slots + queued_slots; }
  /// Slots left (negative when the pool was shrunk below what runs in it).
  int open_slots() const { return slots - occupied_slots(); }
};

/// A pool as a JSON object in Airflow's `Pool` schema (name, slots, occupied_slots, running_slots,
/// queued_slots, open_slots, description): what the API and `dagrun pools list --json` show.
std::string pool_json(const pool_record& p);

/// A dataset (Airflow's Dataset): a URI that tasks update (`outlets`) and DAGs are scheduled on.
struct dataset_record {
  std::int64_t id = 0;       ///< drawn by the store when first recorded
  std::string uri;           ///< its URI
  std::string extra = "{}";  ///< Airflow's `extra` (JSON object text)
  timestamp created_at{};    ///< when the store first heard of it
  timestamp updated_at{};    ///< its latest event, or its creation
};

/// One update of a dataset (Airflow's DatasetEvent): a producing task's success, or an event
/// posted through the API (no source task then).
struct dataset_event_record {
  std::int64_t id = 0;         ///< drawn by the store when written (increasing)
  std::string uri;             ///< the dataset
  std::string extra = "{}";    ///< details (JSON object text)
  std::string source_dag_id;   ///< the producing task's DAG, "" for an external event
  std::string source_run_id;   ///< its run, "" for an external event
  std::string source_task_id;  ///< the producing task, "" for an external event
  int source_try = 0;          ///< the try that succeeded (0 for an external event)
  timestamp when{};            ///< when it happened
  int source_map_index = -1;   ///< the producing instance's map index (-1: not mapped, or external)
};

/// Which dataset events to list (every field set must match), newest first.
struct dataset_event_filter {
  std::optional<std::string> uri;             ///< only this dataset
  std::optional<std::string> source_dag_id;   ///< only events of this DAG's tasks
  std::optional<std::string> source_run_id;   ///< only events of this run's tasks
  std::optional<std::string> source_task_id;  ///< only events of this task
  std::optional<int> source_map_index;        ///< only events of this mapped instance (-1: not mapped)
  /// Sort fields: id, when, uri, dataset_id, source_dag_id, source_run_id, source_task_id; own
  /// order: newest (highest id) first.
  listing_order order;
  std::size_t limit = 0;                      ///< at most this many (0: all)
  std::size_t offset = 0;                     ///< skipping this many first, in the listing's order
};

/// A change to a run, applied only if the run is still in `expected` (compare-and-set).
struct run_update {
  std::string dag_id;                      ///< the run's DAG
  std::string run_id;                      ///< the run
  run_state expected = run_state::queued;  ///< the state the writer saw
  run_state state = run_state::running;    ///< the new state
  std::optional<timestamp> start_date;     ///< set when given
  std::optional<timestamp> end_date;       ///< set when given
};

/// A change to a task instance, applied only if it is still in `expected` with `expected_try`
/// (compare-and-set): a stale writer loses. An update that starts a try (to `queued` or
/// `running` from any other state) also loses when its pool does not exist or has fewer open
/// slots than the record's `pool_slots`, counted in the same transaction over every DAG, so
/// that several schedulers never overfill a pool. Such updates are written after the change
/// set's other updates (which may free slots), except updates of a row a claim before them
/// touched. Every field of the record is written (but see `state_only`). An instance that does
/// not exist yet (a task added after its run was created) is created when the update expects
/// `none` with try 0, the state it would have had.
struct task_instance_update {
  task_state expected = task_state::none;  ///< the state the writer saw
  int expected_try = 0;                    ///< the try number the writer saw
  task_instance_record record;             ///< the new values (keys pick the row)
  /// When set, the start date the writer saw too: a try's end names the poke it ends (a
  /// rescheduled sensor pokes again under its try number, each poke with a start of its own).
  std::optional<timestamp> expected_start{};
  /// Set by a writer that changed the state alone (a task whose upstream let it run, a retry
  /// whose delay passed: `scheduled`): the record's other fields are those it read. The store may
  /// then write the state alone (and the time of the change): on PostgreSQL every field costs a
  /// wide fan-out's first pass a third more. It writes every field all the same when the change set
  /// updates the instance more than once, or holds only a few such updates besides others.
  bool state_only = false;
};

/// Rows of another part of the store's database that a change set's transaction writes with it:
/// the task queue's tries and acknowledgements, when the store and the queue share one PostgreSQL
/// database, so that a try is queued in the transaction that records its start, and an end
/// forgotten in the one that records it (no durable commit and no window of their own). Only the store that knows the attachment's kind and database writes it (the
/// PostgreSQL store, the queue's); any other writes the change set alone, and the attachment's
/// owner does its work itself. Its owner makes it; the store tells it when it is in.
class write_attachment {
public:
  virtual ~write_attachment() = default;
  /// Called once the transaction that wrote it is known to have committed, and only then (not for
  /// an attempt rolled back, nor when the change set was written without it, nor when `apply`
  /// threw: then whether it committed is not known).
  virtual void committed() noexcept = 0;
};

/// Everything one scheduler step writes, applied in one transaction.
struct change_set {
  /// Runs with their task ids (instances start as `none`). An update of a new run's instance in
  /// the same change set applies to the new row (the first update of an instance that expects
  /// state none and no try, and starts none, is written as that row). A run that exists already
  /// (its id, or its logical date for a scheduled or backfill run) is not created, and the run and
  /// task instance updates of it here are refused, as lost; its other writes (deletes, tries,
  /// XComs, events) are the caller's to keep out: with all_or_nothing, none is written.
  std::vector<std::pair<run_record, std::vector<std::string>>> new_runs;
  std::vector<run_update> runs;                    ///< run state changes
  std::vector<task_instance_update> task_instances;///< task instance changes
  /// Tries to insert or replace (by dag, run, task, try). One that its task instance is still on
  /// once the change set is written (the instance's last update here won and leaves it on that
  /// try: ended, or a rescheduled sensor's next poke) gets no row: the instance is its record until it moves off the try, and the store keeps the
  /// try as a row then, whoever moves it (a retry, a clear, a mark). (Airflow keeps a task
  /// instance's earlier tries in task_instance_history the same way.)
  std::vector<try_record> tries;
  /// Tries to insert where the try has no row yet, leaving a row it has as it is (but one kept while
  /// the try was still queued or running, which the end replaces), and not where the task instance
  /// is still on the try (it shows it): the end of a rescheduled sensor's poke whose task instance
  /// had moved on (cleared, marked, or to a later poke).
  std::vector<try_record> tries_if_absent;
  std::vector<xcom_record> xcoms;                  ///< XCom values to insert or replace
  /// Task instances whose XComs are deleted (all keys) before `xcoms` are written: a cleared
  /// task must not hand its old values to the next run of its downstream tasks.
  std::vector<xcom_record> xcom_deletes;
  /// Task instances deleted (by dag, run, task and map index), before the task instance updates:
  /// a mapped task's unexpanded instance (map index -1) when its instances are created.
  std::vector<task_instance_record> task_instance_deletes;
  /// Event log entries to add, in the same transaction (the store draws their ids).
  std::vector<event_record> events;
  /// Dataset events of tasks that succeeded (their outlets), each queued for the dataset's
  /// consumers as add_dataset_event does; a repeat of one (same task try and URI) is ignored.
  std::vector<dataset_event_record> dataset_events;

  /// When set, the change set is written only if every compare-and-set wins (and every new run is
  /// created): otherwise nothing is written and the result says so (`applied` false). Operations
  /// made by hand (clear, mark) use it, so that they never apply in part while a scheduler moves
  /// the same run on; so does the scheduler, which then writes its pass again without the runs
  /// that lost (it reloads those).
  bool all_or_nothing = false;

  /// Written in the same transaction by a store that can (see write_attachment): what it holds
  /// back goes with the transaction's first message, its rows after the change set's; it is told
  /// which tries' claims (updates that start a try) won.
  std::shared_ptr<write_attachment> attachment;

  /// True when there is nothing to write (an attachment alone is not written).
  bool empty() const {
    return new_runs.empty() && runs.empty() && task_instances.empty() && tries.empty() && tries_if_absent.empty() &&
           xcoms.empty() && xcom_deletes.empty() && events.empty() && task_instance_deletes.empty() &&
           dataset_events.empty();
  }
};

/// What applying a change set did.
struct change_result {
  std::vector<bool> runs_created;            ///< per new run: false when it already existed
  std::vector<bool> runs_updated;            ///< per run update: false when its compare-and-set lost
  std::vector<bool> task_instances_updated;  ///< per task instance update: false when it lost
  /// False when an `all_or_nothing` change set was not written because one of its
  /// compare-and-sets lost (the vectors above then say which won and which lost).
  bool applied = true;
};

/// Which runs to list.
struct run_filter {
  std::optional<std::string> dag_id;   ///< only this DAG
  std::set<std::string> dag_ids;       ///< only these DAGs (empty: any); with `dag_id`, both must hold
  std::set<run_state> states;          ///< only these states (empty: all)
  std::optional<time_point> logical_from;  ///< logical date at or after
  std::optional<time_point> logical_to;    ///< logical date at or before
  /// Started (ended) at or after / at or before; a run not started (ended) yet matches no bound.
  std::optional<timestamp> start_from, start_to, end_from, end_to;
  /// Last written at or after / at or before (Airflow's updated_at: the store stamps every write
  /// of a run's row with the time it is made); a row not written since the stamp was kept (a
  /// database from before it) meets no bound unless it had started or ended.
  std::optional<timestamp> updated_from, updated_to;
  bool automated_only = false;         ///< only scheduled and backfill runs
  /// Sort fields: dag_id, run_id, run_type, state, logical_date, data_interval_start,
  /// data_interval_end, start_date, end_date, updated_at, manual (triggered by hand: after the
  /// others ascending); own order: newest logical date first, then by DAG and run id.
  listing_order order;
  std::size_t limit = 0;               ///< at most this many (0: all)
  std::size_t offset = 0;              ///< skipping this many first, in the listing's order
};

/// Which task instances to list across runs (every field set must hold), in which order, which page.
struct task_instance_filter {
  std::set<std::string> dag_ids;       ///< only these DAGs (empty: any)
  std::set<std::string> run_ids;       ///< only these runs (empty: any)
  std::set<std::string> task_ids;      ///< only these tasks (empty: any)
  std::set<task_state> states;         ///< only these states (empty: any)
  std::set<std::string> pools;         ///< only instances whose latest try took these pools (empty: any)
  std::set<std::string> queues;        ///< only instances whose latest try was sent to these queues (empty: any)
  std::set<std::string> executors;     ///< only instances whose latest try these executors ran (empty: any)
  std::optional<int> map_index;        ///< only this map index (-1: instances of tasks not mapped)
  bool mapped_only = false;            ///< only instances of mapped tasks (map index 0 and up)
  std::optional<time_point> logical_from;  ///< its run's logical date at or after
  std::optional<time_point> logical_to;    ///< its run's logical date at or before
  /// Started (ended) at or after / at or before; an instance not started (ended) yet meets no bound.
  std::optional<timestamp> start_from, start_to, end_from, end_to;
  /// Its latest try's duration (end - start) at least / at most; one not ended meets no bound.
  std::optional<std::chrono::microseconds> duration_from, duration_to;
  /// Last written at or after / at or before, as run_filter's.
  std::optional<timestamp> updated_from, updated_to;
  /// Sort fields: dag_id, run_id, task_id, map_index, logical_date, start_date, end_date,
  /// duration, state, try_number, pool, pool_slots, queue, executor, updated_at; own order: newest run (logical
  /// date) first, then by DAG, run id, task id and map index.
  listing_order order;
  std::size_t limit = 0;               ///< at most this many (0: all)
  std::size_t offset = 0;              ///< skipping this many first, in the listing's order
};

/// A task instance as listed across runs: with its run's logical date (Airflow's execution_date).
struct listed_task_instance {
  task_instance_record record;  ///< the instance
  time_point logical_date{};    ///< its run's logical date
};

/// Which XComs to list (of one task instance, or of any DAG, run or task: the API's `~`), by DAG,
/// run, task, key and map index, and which page.
struct xcom_filter {
  std::optional<std::string> dag_id;   ///< only this DAG's (unset: every DAG's)
  std::optional<std::string> run_id;   ///< only this run's
  std::optional<std::string> task_id;  ///< only this task's
  std::optional<int> map_index;    ///< only this instance's (-1: a task not mapped); unset: every instance's
  std::optional<std::string> key;  ///< only this key
  std::size_t limit = 0;           ///< at most this many (0: all)
  std::size_t offset = 0;          ///< skipping this many first
};

/// The metadata store. Implementations are safe to use from one thread at a time.
class store {
public:
  virtual ~store() = default;

  /// Brings the schema to the latest version (idempotent); every store does it on open too.
  virtual void migrate() = 0;
  /// The schema version in the database.
  virtual int schema_version() = 0;

  /// Pauses or unpauses a DAG (a DAG never seen before is created, unpaused by default).
  virtual void set_paused(const std::string& dag_id, bool paused) = 0;
  /// The ids of paused DAGs.
  virtual std::set<std::string> paused_dags() = 0;
  /// Replaces the list of import errors.
  virtual void set_import_errors(const std::vector<import_error_record>& errors) = 0;
  /// The current import errors.
  virtual std::vector<import_error_record> import_errors() = 0;

  /// Applies a change set in one transaction.
  virtual change_result apply(const change_set& changes) = 0;

  /// Runs matching `filter`, in its order (by default newest logical date first, then by DAG and run id).
  virtual std::vector<run_record> runs(const run_filter& filter) = 0;
  /// How many runs match `filter`, its limit and offset aside (a listing's total).
  virtual std::size_t count_runs(const run_filter& filter) = 0;
  /// Task instances matching `filter` across runs, each with its run's logical date.
  virtual std::vector<listed_task_instance> list_task_instances(const task_instance_filter& filter) = 0;
  /// How many task instances match `filter`, its limit and offset aside (a listing's total).
  virtual std::size_t count_task_instances(const task_instance_filter& filter) = 0;
  /// One run, if it exists.
  virtual std::optional<run_record> find_run(const std::string& dag_id, const std::string& run_id) = 0;
  /// The task instances of a run, by task id, then map index.
  virtual std::vector<task_instance_record> task_instances(const std::string& dag_id, const std::string& run_id) = 0;
  /// Every task instance in one of `states`, across all runs (crash recovery, the scheduler's start).
  virtual std::vector<task_instance_record> task_instances_in(const std::set<task_state>& states) = 0;
  /// The tries of one task instance, oldest first (of a mapped task: of its instance `map_index`):
  /// the ones it moved off, and the one it is on (its number, state, times, host and log, as
  /// try_record_of shows them) once it has started one. A try the instance shows has no row of its
  /// own: see change_set::tries.
  virtual std::vector<try_record> tries(const std::string& dag_id, const std::string& run_id, const std::string& task_id,
                                        int map_index = -1) = 0;

  /// An XCom value, if pushed. Of a mapped task: the values of its instances as a JSON list in
  /// map index order (mapped_xcom_list), as Airflow's xcom_pull of a mapped task.
  virtual std::optional<std::string> xcom(const std::string& dag_id, const std::string& run_id,
                                          const std::string& task_id, const std::string& key = "return_value") = 0;

  /// Every XCom a task pushed, by key, then map index (all the instances of a mapped task).
  virtual std::vector<xcom_record> xcoms(const std::string& dag_id, const std::string& run_id,
                                         const std::string& task_id) = 0;
  /// The XComs `filter` selects, by key, then map index.
  virtual std::vector<xcom_record> xcoms(const xcom_filter& filter) = 0;
  /// How many XComs match `filter`, its limit and offset aside.
  virtual std::size_t count_xcoms(const xcom_filter& filter) = 0;

  /// Sets the note of a run (`task_id` empty) or of one of its task instances (of a mapped task,
  /// the one at `map_index`: each instance has its own, as in Airflow); false when there is no
  /// such run or task instance.
  virtual bool set_note(const std::string& dag_id, const std::string& run_id, const std::string& task_id,
                        const std::string& note, int map_index = -1) = 0;
  /// Deletes a run with its task instances, tries and XComs; false when it did not exist.
  virtual bool delete_run(const std::string& dag_id, const std::string& run_id) = 0;
  /// Deletes everything recorded of a DAG (its runs and their rows, its paused flag); returns how
  /// many runs were deleted. The event log keeps its entries.
  virtual std::size_t delete_dag(const std::string& dag_id) = 0;

  /// Event log entries matching `filter`, in its order (newest first by default).
  virtual std::vector<event_record> events(const event_filter& filter) = 0;
  /// How many event log entries match `filter`, its limit and offset aside.
  virtual std::size_t count_events(const event_filter& filter) = 0;
  /// One event log entry, if it exists.
  virtual std::optional<event_record> find_event(std::int64_t id) = 0;

  /// Records the datasets DAGs declare: every URI in `uris` becomes a dataset if it is not one, and
  /// for each DAG in `consumers` the datasets it is scheduled on replace those it had (an empty
  /// list: it consumes none). Events queue up for consumers from then on.
  virtual void register_datasets(const std::vector<std::string>& uris,
                                 const std::map<std::string, std::vector<std::string>>& consumers) = 0;
  /// Every dataset, by URI.
  virtual std::vector<dataset_record> datasets() = 0;
  /// One dataset, if known.
  virtual std::optional<dataset_record> find_dataset(const std::string& uri) = 0;
  /// Records an event of a known dataset (its id and time drawn here when 0 / unset) and queues it
  /// for the dataset's consumers; returns it with its id, or nullopt when the dataset is unknown
  /// or the event repeats one of the same task try.
  virtual std::optional<dataset_event_record> add_dataset_event(const dataset_event_record& e) = 0;
  /// Dataset events matching `filter`, in its order (newest first by default).
  virtual std::vector<dataset_event_record> dataset_events(const dataset_event_filter& filter) = 0;
  /// How many dataset events match `filter`, its limit and offset aside.
  virtual std::size_t count_dataset_events(const dataset_event_filter& filter) = 0;
  /// The datasets updated since each consumer DAG's last dataset-triggered run (Airflow's
  /// DatasetDagRunQueue), by DAG.
  virtual std::map<std::string, std::set<std::string>> queued_datasets() = 0;
  /// Creates `run` with its task instances if, in the same transaction, it takes `uris` off its
  /// DAG's queue (each must still be queued) and no run with its id exists; links the events of
  /// those datasets since they were queued to it. False, changing nothing, otherwise: of several
  /// schedulers, exactly one creates the run.
  virtual bool create_dataset_run(const run_record& run, const std::vector<std::string>& task_ids,
                                  const std::set<std::string>& uris) = 0;
  /// The runs dataset event `event_id` triggered (Airflow's `created_dagruns`), oldest first.
  virtual std::vector<run_record> runs_triggered_by(std::int64_t event_id) = 0;
  /// The dataset events that triggered a run (Airflow's upstreamDatasetEvents), oldest first.
  virtual std::vector<dataset_event_record> triggering_dataset_events(const std::string& dag_id,
                                                                      const std::string& run_id) = 0;

  /// Sets a variable.
  virtual void set_variable(const std::string& name, const std::string& value) = 0;
  /// A variable, if set.
  virtual std::optional<std::string> variable(const std::string& name) = 0;
  /// Every variable, by name.
  virtual std::map<std::string, std::string> variables() = 0;
  /// Deletes a variable; false when it did not exist.
  virtual bool delete_variable(const std::string& name) = 0;

  /// Adds or replaces a connection.
  virtual void set_connection(const connection& c) = 0;
  /// A connection, if stored.
  virtual std::optional<connection> find_connection(const std::string& conn_id) = 0;
  /// Every stored connection, by id.
  virtual std::vector<connection> connections() = 0;
  /// Deletes a connection; false when it did not exist.
  virtual bool delete_connection(const std::string& conn_id) = 0;

  /// Adds a pool or changes its slots and description; throws dag::usage_error for an empty name
  /// or negative slots.
  virtual void set_pool(const pool_record& p) = 0;
  /// A pool with its occupied slots, if it exists.
  virtual std::optional<pool_record> find_pool(const std::string& name) = 0;
  /// Every pool with its occupied slots, by name.
  virtual std::vector<pool_record> pools() = 0;
  /// Deletes a pool; false when it did not exist. Throws dag::usage_error for `default_pool`.
  /// Tasks naming a deleted pool wait until it exists again.
  virtual bool delete_pool(const std::string& name) = 0;

  /// Deletes finished runs (with their task instances, tries and XComs) whose end is before `cutoff`,
  /// and the dataset events before it that no consumer DAG still waits on; returns how many runs
  /// were deleted.
  virtual std::size_t clean(timestamp cutoff) = 0;
};

/// Opens and migrates the store a `--db` URL names: `sqlite:PATH` (created if missing) or
/// `postgresql://…`; throws dag::usage_error for a bad URL, dag::error when it cannot be opened.
std::unique_ptr<store> open_store(const std::string& url);

/// Whether the database a `--db` URL names answers a query within `within`: one fresh connection,
/// no retry and no backoff (a store rides out outages; a health check must say at once that there
/// is one). Never throws: a bad URL or any failure is false.
bool database_answers(const std::string& url, std::chrono::milliseconds within);

}  // namespace dag
