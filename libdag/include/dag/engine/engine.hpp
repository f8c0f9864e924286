#pragma once
/// @file The scheduler loop: reads state, asks the pure core what to do, writes it in one
/// transaction, hands tries to the executor it was given, and sleeps until a try ends or
/// something falls due.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <tuple>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/time.hpp>
#include <dag/engine/scheduler_core.hpp>
#include <dag/exec/executor.hpp>
#include <dag/load/dag_folder.hpp>
#include <dag/load/operator_catalog.hpp>
#include <dag/metrics/registry.hpp>
#include <dag/store/store.hpp>

namespace dag {

/// Identifies a run.
struct run_key {
  std::string dag_id;  ///< its DAG
  std::string run_id;  ///< its run id
  friend auto operator<=>(const run_key&, const run_key&) = default;
};

/// How an engine runs.
struct engine_options {
  /// The store an engine built without one opens (`sqlite:PATH` or `postgresql://…`); an engine
  /// given a store ignores it.
  std::string store_url = "sqlite:dagrun.db";
  int parallelism = 32;                          ///< tries running at once, across DAGs
  std::filesystem::path log_folder = "logs";     ///< where try logs go
  bool create_scheduled_runs = true;             ///< the daemon creates due runs; `run`/`backfill` do not
  bool adopt_store_runs = true;                  ///< advance every active run in the store (the daemon); else only runs this engine created or tracks
  std::chrono::milliseconds poll_interval{1000}; ///< how often the daemon looks for runs made by other processes
  std::string hostname;                          ///< recorded with each try (default: this host's name)
  /// The local executor an engine makes (when given none) keeps the ends the store could not take
  /// in files under `log_folder/.unrecorded/HOSTNAME/`, so that they outlive the process, and
  /// records those a previous process left there (the daemon); false: they are held in memory only.
  bool spool_unrecorded_ends = false;
  /// Where the engine records its metrics (the HTTP face's /metrics; see declare_engine_metrics);
  /// none when null. Must outlive the engine.
  metrics_registry* metrics = nullptr;
  /// The web UI's address (`https://dagrun.example`, Airflow's `[webserver] base_url`): alerts link
  /// to a try's log under it. Empty: alerts give the log file's path.
  std::string base_url;
  /// Where a notifier that failed is reported (one line, on the alert thread); empty: stderr.
  std::function<void(const std::string&)> warn;
  /// Told how long each scheduler pass (`step`) took, on the engine's thread, after the pass
  /// (benchmarks; the metrics' loop duration histogram is too coarse for them); none when empty.
  std::function<void(std::chrono::steady_clock::duration)> on_pass;
  /// Called on the loop's thread for each run the engine stops advancing: with its final state when
  /// it finished (this engine finished it, or another process did), with nullopt when it was
  /// deleted from the store meanwhile. A finished run is told about once the pass that finished it
  /// (or let go of it, when another process finished it) is written. A run read again later (a
  /// late end of one of its tries) may be told about again: callers count each key once.
  /// `backfill` counts its runs with it, without asking after each of them on every pass. It must
  /// not call back into the engine.
  std::function<void(const run_key&, std::optional<run_state>)> run_ended;
};

/// Declares the families the engine records into `m`: heartbeat, loop duration, tries and runs
/// finished, their durations, schedule delay, executor slots and resource-fault pauses (all named
/// `dagrun_…`).
void declare_engine_metrics(metrics_registry& m);

/// Free space below which the disk of the logs folder counts as full (1 MiB).
inline constexpr std::uintmax_t min_free_log_bytes = 1u << 20;
/// Whether the disk holding `folder` (or its nearest existing parent) has less than
/// min_free_log_bytes free for unprivileged writers. False when that cannot be told.
bool disk_full(const std::filesystem::path& folder);

/// A DAG that has unfinished (queued or running) runs while no definition of it is loaded: its
/// file was deleted or moved away, or no longer defines it. Its runs wait until it is back.
struct waiting_dag {
  std::string dag_id;  ///< the DAG
  std::string file;    ///< the file it was last loaded from; empty when unknown (not loaded since the process started)
  friend bool operator==(const waiting_dag&, const waiting_dag&) = default;
};

/// The DAGs of `s`'s unfinished runs that are not among `loaded`, each once, by id (files unknown).
std::vector<waiting_dag> waiting_dags(store& s, const std::vector<shared_definition>& loaded);

/// The import errors of a DAGs folder, as the daemon records them (`/api/v1/importErrors`, the UI's
/// banner, `dags list`): each problem of `folder`, then one for each DAG of `waiting` whose file has
/// no problem of its own, naming the file and saying why (`file not found`, or that it no longer
/// defines the DAG); a DAG whose file is unknown is named under `folder_path`.
std::vector<import_error_record> import_errors_of(const dag_folder& folder, const std::vector<waiting_dag>& waiting,
                                                  const std::filesystem::path& folder_path);

/// Writes a new run of `dag` with its task instances (state `none`) to `s`; nullopt when a run with
/// that id or (for scheduled and backfill runs) that logical date exists. A manual run's interval
/// is timetable::manual_interval (Airflow's inference); a backfill run takes the schedule's
/// interval at that date when there is one, else `[date, date]`. `run_id` replaces the id made from
/// the type and date (make_run_id) when not empty.
std::optional<run_record> create_run_record(store& s, const scheduled_dag& dag, run_type type, time_point logical_date,
                                            const std::string& conf = "{}", const std::string& run_id = "");
/// The record create_run_record writes (nothing is written): its id, dates, interval and conf.
run_record make_run_record(const scheduled_dag& dag, run_type type, time_point logical_date,
                           const std::string& conf = "{}", const std::string& run_id = "");

/// The scheduler loop over a store, running tries on the executor it is given. Not thread-safe:
/// one thread drives it; executor threads only post try ends to it.
class alert_dispatcher;

class engine {
public:
  /// An engine with the defaults: the store at `options.store_url` (opened and migrated), dagrun's
  /// built-in operators, the system clock, and `runs_tries` (null: a local executor of
  /// `options.parallelism` threads).
  explicit engine(engine_options options = {}, std::unique_ptr<executor> runs_tries = nullptr);
  /// An engine over `s` and the operators of `operators`, reading time from `now`, running tries
  /// on `runs_tries` (null: a local executor of `options.parallelism` threads). `s`, `operators`
  /// and `now` must outlive it.
  engine(dag::store& s, const operator_catalog& operators, const clock& now, engine_options options = {},
         std::unique_ptr<executor> runs_tries = nullptr);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  /// Replaces the DAGs the engine schedules. Each is checked first (dag::check: validated, and
  /// `default_args` applied to its tasks; checking a checked DAG changes nothing), so a task's
  /// settings always count; throws dag::definition_error listing every problem, changing nothing,
  /// when any DAG is invalid. Runs of DAGs that disappeared keep their state in the store and wait,
  /// not advanced, until their DAG comes back; tries of theirs that end meanwhile are recorded
  /// (with the last definition the engine had, or once the DAG is back when it never had one).
  /// The definitions are checked in place and then shared, not copied.
  void set_dags(std::vector<definition> dags);
  /// As set_dags above, for DAGs shared read-only (the DAGs folder's): a checked definition
  /// (definition::checked) is taken as it is, an unchecked one is checked as a copy. A definition
  /// the engine schedules already (the same pointer: a reload that kept the DAG of an unchanged
  /// file) keeps its scheduled form and its runs as they are. A reader of definitions() holding the
  /// DAGs published before keeps them intact.
  void set_dags(std::vector<shared_definition> dags);
  /// As the shared set_dags, from a braced list of shared definitions; `set_dags({})` (no DAG)
  /// means this one, where the two vectors above would both take an empty list.
  void set_dags(std::initializer_list<shared_definition> dags) { set_dags(std::vector<shared_definition>(dags)); }
  /// The DAG with this id, or nullptr.
  const scheduled_dag* find_dag(const std::string& dag_id) const;
  /// The DAGs whose runs wait for them (see waiting_dag), as the latest look at the store's active
  /// runs saw them (the daemon looks every poll_interval), less those loaded since; by id. A DAG
  /// this engine loaded before names the file it came from.
  std::vector<waiting_dag> waiting_dags() const;

  /// After a crash: of the tries the store says are `queued` or `running`, those the executor
  /// judges lost (executor::lost) become failed tries ("executor lost"), retried while tries
  /// remain; a try whose end the engine holds (replayed from the local executor's spool) is not
  /// lost, and its end is recorded by the next pass. Call it before starting runs. Returns how many.
  std::size_t recover_lost_tries();

  /// Creates a run of `dag_id` now; nullopt when a run with that id or (for scheduled and backfill
  /// runs) that logical date exists. Manual runs take timetable::manual_interval. `conf` is stored
  /// as given: a conf from a user goes through dag::checked_conf (dag/model/operations.hpp) first,
  /// as `dagrun run` does, so that it is a JSON object and its typed params hold. The run is
  /// written with its first pass (started, within max_active_runs, its ready tasks `scheduled`),
  /// but no try starts before the loop's next pass (step, run_until); a run that pass finished (it
  /// gave up on a previous run) is told about (engine_options::run_ended) by that pass too.
  std::optional<run_key> create_run(const std::string& dag_id, run_type type, time_point logical_date,
                                    const std::string& conf = "{}");
  /// Creates runs of `dag_id` at each of `logical_dates` as create_run does, all in one
  /// transaction (a backfill's runs); per date, its run's key, or nullopt when a run with that id
  /// or logical date exists (or an earlier date given made it). The runs are tracked from what was
  /// written, without reading them back.
  std::vector<std::optional<run_key>> create_runs(const std::string& dag_id, run_type type,
                                                  const std::vector<time_point>& logical_dates, const std::string& conf = "{}");
  /// Starts tracking an existing run (e.g. a backfill run to re-run), loading it from the store.
  void track_run(const run_key& key);

  /// One pass: applies finished tries, creates due runs (daemon), advances every active run,
  /// writes all of it in one transaction and starts the chosen tries. Returns when to wake next
  /// at the latest (nullopt: only on an event). When the store cannot be written (its own retries
  /// gave up) it throws and nothing of the pass counts: the ends it took are kept to be recorded
  /// by a later pass, so a caller may simply step again.
  std::optional<timestamp> step();

  /// Steps until `done()` holds (checked after each step) or `stop` is requested, sleeping
  /// between steps until a try ends, wake() is called or the next wake time.
  void run_until(const std::function<bool()>& done, std::stop_token stop = {});
  /// Ends run_until's sleep now, from any thread, so that it steps and asks `done()` again (the
  /// daemon: its DAGs folder changed).
  void wake();
  /// Steps until every run in `keys` is finished; returns their final states.
  std::vector<run_state> run_to_completion(const std::vector<run_key>& keys, std::stop_token stop = {});

  /// Stops starting tries; waits up to `grace` for running ones, then cancels them (their
  /// processes get SIGTERM, then SIGKILL) and records how they ended.
  void shutdown(std::chrono::milliseconds grace);

  /// True while the engine advances this run (it is active and tracked).
  bool tracking(const run_key& key) const { return active_.contains(key); }
  /// The state of a tracked or stored run.
  std::optional<run_state> state_of(const run_key& key);
  /// Number of tries running now.
  int running() const { return running_; }
  /// The store the engine records into (not thread-safe: use it from the thread driving the engine).
  dag::store& store() { return store_; }
  /// How it was configured (the store URL of an engine that opened its own store, among others).
  const engine_options& options() const { return options_; }
  /// The clock it reads.
  const clock& time_source() const { return clock_; }
  /// The registry it records its metrics into: `options.metrics`, or one of its own, made (with
  /// the engine's families declared) on the first call. Thread-safe: the loop records into it
  /// from the next pass on.
  metrics_registry& metrics();
  /// True when the engine opened its store itself (from `options().store_url`), false when it was
  /// handed one (its URL is then unknown to the engine).
  bool owns_store() const { return defaults_ != nullptr; }
  /// The definitions of the DAGs it schedules now, as set_dags last replaced them (checked), by id;
  /// the very ones it schedules, shared, not copies. Thread-safe: the HTTP face reads it while the
  /// engine runs.
  std::shared_ptr<const std::vector<shared_definition>> definitions() const;

private:
  struct defaults;  // what an engine built without them owns: store, operators, clock
  void start(std::unique_ptr<executor> runs_tries);

  struct active_run {
    std::shared_ptr<const scheduled_dag> dag;
    run_record run;
    std::vector<task_instance_record> tis;
    run_progress progress;
    bool waited = false;  // it stayed queued through a pass (max_active_runs): re-read it when it starts
    // Its view was kept up since the last sweep for lost tries (recover_lost_tries): read from the
    // store, or an end of it recorded, or a try of it started. A sweep reads the others again.
    bool kept_up = true;
  };

  timestamp now_us() const;
  std::optional<timestamp> step_once();
  void load_active_runs();
  bool load_run(const run_key& key);
  /// Tracks `run` of `dag` with the task instances `stored` (as the store lists them; none for a
  /// run just created, whose instances are all `none`), replacing any view of it the engine had.
  void track_loaded(const std::shared_ptr<const scheduled_dag>& dag, run_record run, std::vector<task_instance_record> stored);
  /// The definition of `dag_id`: the loaded one, else the last one it had before it left the
  /// folder (retired_); nullptr when the engine never had one.
  const std::shared_ptr<const scheduled_dag>* dag_for(const std::string& dag_id) const;
  /// Takes the reported ends and the parked ones (never throws: none is lost).
  std::vector<task_event> take_events();
  /// The writes of a pass that come of the ends it recorded (each end's task instance update, the
  /// skips its flow rule made, its XComs and dataset events), as the index of that end's update in
  /// the pass's change set: they stand or fall with the end when their run lost (apply_by_run).
  struct end_writes {
    std::vector<std::size_t> updates;         ///< for the first task instance updates of the pass
    std::vector<std::size_t> xcoms;           ///< for the first XComs of the pass
    std::vector<std::size_t> dataset_events;  ///< for the first dataset events of the pass
  };
  /// Puts `events` into `changes`: each end of a try still running, as finish_try decides; repeats
  /// and late ends are ignored; ends of DAGs the engine has no definition of are parked until one
  /// comes.
  void record_events(const std::vector<task_event>& events, change_set& changes, end_writes& of_ends);
  /// Re-reads every active run from the store (after a pass whose commit failed).
  void reload_active_runs();
  /// Reads the runs of reread_ from the store; one whose read fails stays there (and is named in
  /// a warning), the others are held again.
  void reread_runs();
  void create_due_runs(change_set& changes, std::optional<timestamp>& wake);
  /// Creates a dataset-triggered run of each dataset-scheduled DAG whose condition the datasets
  /// queued for it meet (after a pass that wrote dataset events, and on each poll).
  void create_dataset_runs();
  /// Records in the store the datasets of `dags_` and which DAGs consume which, for DAGs that are
  /// or were (`before`) scheduled on datasets.
  void register_datasets(const std::map<std::string, std::shared_ptr<const scheduled_dag>>& before);
  void register_pending_datasets();
  /// Advances every active run: the tries to start go to `starts`, those a dagrun_timeout stops to
  /// `stops`. Given `only`, advances only those runs and starts no try (the first pass of runs
  /// create_runs writes, which the loop's next pass starts tries of).
  void advance_runs(change_set& changes, std::vector<task_request>& starts, std::vector<try_id>& stops,
                    std::optional<timestamp>& wake, const std::set<run_key>* only = nullptr);
  /// Tracks the runs `changes` creates (new_runs) as they will be written; takes out of it those
  /// the engine has (the store has them) and second copies; returns the ones it tracked.
  std::set<run_key> track_new_runs(change_set& changes);
  /// Forgets what a pass that was not written decided of the runs it created (`fresh`): the runs,
  /// their alerts; the others it finished or let go of are read again next pass (reread_), and
  /// told about once a pass that lets go of them is written.
  void forget_unwritten(const std::set<run_key>& fresh);
  /// Drops the alerts queued for run `key`: only the run's own (not its tasks'), or all of them.
  void drop_alerts(const run_key& key, bool run_level_only);
  /// Moves the runs this pass finished, but those in `lost`, to ended_before_pass_ (told next pass).
  void hold_finished_runs(const std::set<run_key>& lost);
  /// Adds to the metrics what the pass just written decided (uncounted_): the ends of its tries
  /// whose own update was written (`kept`, from apply_by_run: empty when all were), its runs' ends
  /// and tries' starts but those of the runs in `lost` (left out: the pass that decides them again
  /// counts them), and its SLA misses.
  void count_written(const std::set<run_key>& lost, const std::vector<bool>& kept);
  /// After apply_by_run: each run that `lost` names is read again from the store, but one the pass
  /// created (`fresh`) that the store had already (`not_created`), which is dropped with its alerts.
  void settle_lost(const std::set<run_key>& lost, const std::set<run_key>& not_created, const std::set<run_key>& fresh);
  /// The key of a task's SLA miss in a run (DAG, run, task): recorded and alerted once.
  using sla_miss_key = std::tuple<std::string, std::string, std::string>;
  /// Records (as a `sla_miss` event) and alerts each task of an active run that has not succeeded
  /// by its run's data interval end plus its `sla`, once; wakes at the next deadline. Runs in
  /// `later` are left to the next pass. Adds the misses it records in `changes` to `recorded`
  /// (also when it throws part way): unmarked when the pass is not written (and counted, through
  /// uncounted_, when it is).
  void check_slas(change_set& changes, std::optional<timestamp>& wake, const std::set<run_key>& later,
                  std::vector<sla_miss_key>& recorded);
  task_request prepare_try(active_run& r, std::size_t slot, change_set& changes, timestamp now);
  /// The run before `r` for depends_on_past: held by the engine, or read from the store into `from_store`.
  previous_run previous_of(const active_run& r, std::vector<task_instance_record>& from_store);
  void poll_store();
  /// Writes `changes` (a pass): whole when every compare-and-set wins; otherwise without any write
  /// to a run that lost one but its ends and what comes of them (`of_ends`; tries made stay), and
  /// without an update that lost and those of its instance after it. Leaves in `changes` what was
  /// written; returns the runs left out. A run it creates that exists already is left out too
  /// (and named in `not_created`).
  /// `kept`, when given, is set to which of the pass's task instance updates were written (by
  /// their index in `changes` as given), or left empty when every one was.
  std::set<run_key> apply_by_run(change_set& changes, const end_writes& of_ends, std::set<run_key>* not_created = nullptr,
                                 std::vector<bool>* kept = nullptr);
  /// Warns (options_.warn, else stderr) of each task naming a pool the store does not have.
  void warn_missing_pools();
  void post(task_event e);
  /// Remembers why ends the store could not take are held in memory only ("" when none is), and
  /// warns when that changes to a new reason.
  /// The ends the engine holds and has not recorded: those waiting for their DAG, then those
  /// reported since the last pass took its events.
  std::vector<task_event> unrecorded_ends();
  void note_unkept(std::string problem);
  /// Counts in `open` (open slots per pool) the slots `changes` take (tries they start) and free
  /// (tries they end): pools_open_ once a pass is written, or a pass's copy of it.
  static void count_pool_slots(const change_set& changes, std::map<std::string, int>& open);
  void hand_over(std::vector<task_request>& starts);
  void queue_alert(alert a, std::vector<notifier_spec> notifiers);
  /// Runs the metadata jobs tries handed over (task_context::metadata), on the loop's thread.
  void run_metadata_jobs();
  /// The task_context::metadata of the tries this engine starts.
  std::function<bool(const metadata_job&, std::stop_token)> metadata_for_tries();
  void send_alerts();

  std::unique_ptr<defaults> defaults_;  // null when given store, operators and clock
  std::unique_ptr<metrics_registry> own_metrics_;  // made by metrics() when none was given
  std::atomic<metrics_registry*> metrics_{nullptr};  // where the loop records: read by it, set by metrics() from any thread
  mutable std::mutex published_mutex_;  // guards what other threads read: definitions_, and making own_metrics_
  std::shared_ptr<const std::vector<shared_definition>> definitions_ = std::make_shared<const std::vector<shared_definition>>();
  std::string log_folder_;  // options_.log_folder as text, for each try's log path
  dag::store& store_;
  const operator_catalog& operators_;
  const clock& clock_;
  engine_options options_;
  std::map<std::string, std::shared_ptr<const scheduled_dag>> dags_;
  // DAGs that left the folder (deleted, unreadable, broken) keep their last definition here: their
  // runs wait, not advanced, but tries of theirs that end are still recorded.
  std::map<std::string, std::shared_ptr<const scheduled_dag>> retired_;
  std::vector<task_event> parked_;  // ends of DAGs never loaded in this engine: recorded once they are
  std::set<std::string> unloaded_with_runs_;  // DAGs with active runs in the store and no definition, at the latest poll
  bool disk_full_ = false;  // the logs folder's disk is full: no new tries
  std::chrono::steady_clock::time_point disk_checked_{};  // when disk_full_ was last asked
  /// Open slots per pool as the store holds them after this engine's latest written pass: read
  /// from the store, then kept by this engine's own claims and ends. Another process's tries make
  /// it wrong both ways: a claim it admits wrongly is refused by the store (which counts each
  /// claim again), and a pool it shows short is read again (pool_short). Empty: read it.
  std::optional<std::map<std::string, int>> pools_open_;
  bool pools_reread_ = false;  // this pass found a pool short of slots: read them again next pass
  bool store_unwritable_ = false;  // the latest pass could not be written
  std::string unkept_;  // why ends not recorded yet are held in memory only (executor::hold), or empty
  bool stale_ = false;  // a pass's commit failed: active_ is ahead of the store until re-read
  bool check_datasets_ = true;  // the dataset queue may have changed: look at it in the next pass
  bool datasets_pending_ = false;  // set_dags changed the DAGs; the store has not taken their datasets yet
  std::map<std::string, std::shared_ptr<const scheduled_dag>> datasets_before_;  // the DAGs it last took
  std::map<run_key, active_run> active_;
  std::set<std::string> paused_;
  /// Per DAG: when its next scheduled interval ends, as its last look found, when that look
  /// created nothing and left it under max_active_runs: no run of it falls due before then, so
  /// create_due_runs skips it (no store query per DAG per pass). Forgotten when one of its runs
  /// ends, when set_dags changes or removes its definition and when it is paused or unpaused.
  std::map<std::string, timestamp> nothing_due_until_;
  // Runs the current pass finished (or let go of, finished by another process), told to
  // options_.run_ended once the pass is written (one that is not reads them again: forget_unwritten).
  std::vector<std::pair<run_key, run_state>> finished_runs_;
  // Runs taken out of active_ to be read from the store again, until that read succeeds (a pass
  // that failed reading one back leaves it here for the next pass: reread_runs).
  std::set<run_key> reread_;
  std::string reread_problem_;  // the last warning of a run that could not be read again (said once)
  /// Runs written finished but not told about yet (create_runs' first pass, a pass that failed
  /// after its commit): the next pass tells them (run_ended).
  std::vector<std::pair<run_key, run_state>> ended_before_pass_;
  std::set<std::string> past_changed_;  // DAGs (with depends_on_past) whose task instances finished since the last pass
  std::set<std::string> warned_pools_;  // DAG, task and pool of missing pools already warned of
  int running_ = 0;
  std::map<std::string, int> dag_running_;  // tries submitted and not yet ended, per DAG
  bool accepting_ = true;
  // Task instances of active runs whose SLA miss is recorded, or being recorded by the current pass
  // (dag, run, task; unmarked when that pass is not written): each is recorded and alerted once. A
  // run's go when it is no longer active (a run read again is looked up in the store's events).
  std::set<sla_miss_key> sla_missed_;
  timestamp last_poll_{};
  timestamp last_sweep_{};

  std::mutex events_mutex_;
  std::condition_variable events_cv_;
  std::deque<task_event> events_;
  struct metadata_request;  // a job a try handed over, waiting for the loop (engine.cpp)
  std::deque<std::shared_ptr<metadata_request>> metadata_requests_;  // guarded by events_mutex_
  bool wake_requested_ = false;  // guarded by events_mutex_: wake() was called since run_until last woke
  // Counts post(), wake() and metadata requests, so that run_until can watch for them without the
  // lock before it sleeps (spin_wait.hpp).
  std::atomic<std::uint64_t> posts_{0};
  bool took_ends_ = false;  // the last pass took ends just posted (not parked ones): more are likely on their way
  // run_until's last wait for an end took less than a watch (spin_wait.hpp), up to the end's post:
  // watching pays.
  bool last_wait_short_ = true;
  std::chrono::steady_clock::time_point last_post_{};  // when post() last queued an end; guarded by events_mutex_
  std::vector<std::pair<alert, std::vector<notifier_spec>>> pending_alerts_;  // sent once the pass is written
  // What the current pass decided, for the metrics (a try's or a run's end, a start's delay, an
  // SLA miss): counted once the pass is written (count_written), dropped when it is refused (the
  // next pass decides the same again).
  struct uncounted {
    std::optional<run_key> run;            // a decision about this run: left out when the run is lost
    std::optional<std::size_t> end_update;  // or a try's end: the index of its own update in the pass
                                            // (neither: counted whenever the pass is written)
    const char* name;
    std::vector<std::string> labels;
    std::optional<double> observed;  // a histogram's value; a counter's increment when empty
  };
  std::vector<uncounted> uncounted_;
  std::unique_ptr<alert_dispatcher> alerts_;  // sends what is still queued when destroyed, before the members above go
  std::unique_ptr<executor> executor_;  // last: destroyed first, so no try end is posted to a dead engine
};

}  // namespace dag
