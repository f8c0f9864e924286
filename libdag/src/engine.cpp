// The scheduler loop. Data moves one way: events in, decisions from the pure core, one
// transaction out, tries to the executor.
#include <dag/engine/engine.hpp>

#include <algorithm>
#include <iterator>
#include <limits>
#include <numeric>
#include <exception>
#include <iostream>
#include <set>
#include <tuple>
#include <utility>

#include <sys/statvfs.h>
#include <unistd.h>

#include <dag/core/environment.hpp>
#include <dag/core/log_file.hpp>
#include <dag/notifiers/dispatcher.hpp>
#include <dag/operators/builtin.hpp>
#include <dag/engine/try_context.hpp>
#include <dag/exec/local_executor.hpp>
#include <dag/load/check.hpp>

#include "spin_wait.hpp"

namespace dag {
namespace {

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

// The same end: of the same try and, where both name one, the same poke of it (a rescheduled
// sensor pokes again under its try number).
bool same_try(const task_event& a, const task_event& b) {
  return a.dag_id == b.dag_id && a.run_id == b.run_id && a.task_id == b.task_id && a.map_index == b.map_index &&
         a.try_number == b.try_number &&
         (a.instance_start == timestamp{} || b.instance_start == timestamp{} || a.instance_start == b.instance_start);
}

// Whether an end may be of the poke `ti` shows: it names none, `ti` shows no start, or the two
// starts agree (a rescheduled sensor pokes again under its try number, each poke with its start).
bool of_poke(const task_instance_record& ti, const task_event& e) {
  return e.instance_start == timestamp{} || !ti.start_date || *ti.start_date == e.instance_start;
}

task_instance_update update_of(const task_instance_record& ti, task_state expected, int expected_try) {
  return {expected, expected_try, ti};
}

// What the write of change `c` expects of its row: the state and try before the pass, and of a
// rescheduled try the poke the view saw (it pokes again under its try number: a view older than
// another scheduler's later poke must not make that poke due, or start it, early).
void expect_as_before(task_instance_update& u, const task_change& c) {
  u.expected = c.before;
  u.expected_try = c.try_before;
  if (c.before == task_state::up_for_reschedule) u.expected_start = c.start_before;
}

// An XCom of a run as the store will hold it once this pass's `pending` values are written: the
// newest pending value, or of a mapped task its instances' values (stored ones with the pending
// ones over them) as one list; else what `stored` reads.
std::optional<std::string> xcom_after(store& s, const std::vector<xcom_record>& pending, const std::string& dag_id,
                                      const std::string& run_id, std::string_view task_id, std::string_view key,
                                      const xcom_reader& stored) {
  std::vector<const xcom_record*> mine;
  for (const auto& x : pending)
    if (x.run_id == run_id && x.dag_id == dag_id && x.task_id == task_id && x.key == key) mine.push_back(&x);
  if (mine.empty()) return stored(task_id, key);
  if (mine.back()->map_index < 0) return mine.back()->value;
  std::vector<xcom_record> rows;
  for (auto& x : s.xcoms(dag_id, run_id, std::string(task_id)))
    if (x.key == key) rows.push_back(std::move(x));
  for (const xcom_record* x : mine) {
    auto same = std::find_if(rows.begin(), rows.end(), [&](const xcom_record& r) { return r.map_index == x->map_index; });
    if (same != rows.end()) *same = *x;
    else rows.push_back(*x);
  }
  return mapped_xcom_list(std::move(rows));
}

}  // namespace

void declare_engine_metrics(metrics_registry& m) {
  m.gauge("dagrun_scheduler_heartbeat", "Unix time of the scheduler loop's latest pass (seconds)");
  m.histogram("dagrun_scheduler_loop_duration_seconds", "Time one scheduler pass takes");
  m.counter("dagrun_task_instance_finished_total", "Tries ended, by the state they left the task instance in",
            {"dag_id", "task_id", "state"});
  m.counter("dagrun_dag_run_finished_total", "Runs finished, by final state", {"dag_id", "state"});
  m.histogram("dagrun_task_duration_seconds", "Duration of tries (execution start to end)", {"dag_id", "task_id"});
  m.histogram("dagrun_dag_run_duration_seconds", "Duration of finished runs (start to end)", {"dag_id", "state"});
  m.histogram("dagrun_schedule_delay_seconds",
              "Time from the last upstream task's end to its downstream task's start");
  m.gauge("dagrun_executor_running_tasks", "Tries handed to the executor and not yet ended");
  m.gauge("dagrun_executor_open_slots", "Tries the scheduler may still start (parallelism minus running)");
  m.gauge("dagrun_scheduler_paused",
          "1 while the scheduler starts no new tries because of a resource fault: disk_full (the logs folder's "
          "disk has less than 1 MiB free) or store_unwritable (the latest pass could not be written)",
          {"reason"});
  m.gauge("dagrun_executor_unkept_ends",
          "1 while ends of tries that the store could not take are held in memory only, because the executor "
          "could not keep them where they outlive the process (the local executor's spool is full or cannot be written)");
  m.counter("dagrun_sla_misses_total", "Tasks that missed their sla (not succeeded by the data interval end plus sla), each counted once",
            {"dag_id", "task_id"});
  m.counter("dagrun_notifications_total", "Alerts sent by notifiers, by notifier type and result (sent, failed)",
            {"type", "result"});
}

namespace {
// The bytes free for unprivileged writers on the disk of `folder`, or nullopt when that cannot be told.
std::optional<std::uintmax_t> free_log_bytes(const std::filesystem::path& folder) {
  // The folder may not exist yet (its first log makes it): ask about the nearest one that does.
  std::filesystem::path at = folder;
  std::error_code ec;
  while (!at.empty() && !std::filesystem::exists(at, ec) && at != at.parent_path()) at = at.parent_path();
  struct statvfs fs {};
  if (at.empty() || ::statvfs(at.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<std::uintmax_t>(fs.f_bavail) * fs.f_frsize;
}
}  // namespace

bool disk_full(const std::filesystem::path& folder) {
  const auto free = free_log_bytes(folder);
  return free && *free < min_free_log_bytes;  // cannot tell: not full
}

namespace {
double seconds_of(std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1e6; }

// The notifiers told when a try leaves its task instance in `state`, Airflow's way: on_failure,
// on_retry or on_success, plus a mail to `email` under email_on_failure / email_on_retry.
std::vector<notifier_spec> notifiers_for(const task_settings& s, task_state state) {
  std::vector<notifier_spec> out;
  auto mail = [&](bool on) {
    if (!on || s.email.empty()) return;
    std::string to;
    for (const auto& address : s.email) to += (to.empty() ? "" : ",") + address;
    out.push_back({"email", {{"to", to}}, 0});
  };
  if (state == task_state::failed) {
    out = s.on_failure;
    mail(s.email_on_failure);
  } else if (state == task_state::up_for_retry) {
    out = s.on_retry;
    mail(s.email_on_retry);
  } else if (state == task_state::success) {
    out = s.on_success;
  }
  return out;
}
}  // namespace

struct engine::defaults {
  std::unique_ptr<dag::store> db;
  operator_catalog operators = builtin_operators();
  system_clock clock;
  explicit defaults(const std::string& store_url) : db(open_store(store_url)) {}
};

engine::engine(engine_options options, std::unique_ptr<executor> runs_tries)
    : defaults_(std::make_unique<defaults>(options.store_url)), store_(*defaults_->db), operators_(defaults_->operators),
      clock_(defaults_->clock), options_(std::move(options)) {
  start(std::move(runs_tries));
}

engine::engine(dag::store& s, const operator_catalog& operators, const clock& now, engine_options options,
               std::unique_ptr<executor> runs_tries)
    : store_(s), operators_(operators), clock_(now), options_(std::move(options)) {
  start(std::move(runs_tries));
}

void engine::start(std::unique_ptr<executor> runs_tries) {
  if (options_.hostname.empty()) options_.hostname = this_host();
  // Stored log paths must not depend on the working directory of whoever reads them later.
  options_.log_folder = std::filesystem::absolute(options_.log_folder);
  log_folder_ = options_.log_folder.string();
  if (options_.parallelism < 1) throw usage_error("parallelism must be at least 1");
  if (!runs_tries) {
    end_spool_options spool;
    if (options_.spool_unrecorded_ends) spool.folder = options_.log_folder / ".unrecorded" / options_.hostname;
    runs_tries = std::make_unique<local_executor>(options_.parallelism, std::move(spool));
  }
  executor_ = std::move(runs_tries);
  executor_->connect([this](task_event e) { post(std::move(e)); }, [this] { return now_us(); });
  paused_ = store_.paused_dags();
  last_poll_ = now_us();
  if (options_.metrics) {
    declare_engine_metrics(*options_.metrics);
    metrics_.store(options_.metrics, std::memory_order_release);
  }
  alerts_ = std::make_unique<alert_dispatcher>([this](const notifier_spec& n, const alert& a, const std::string& why) {
    if (auto* m = metrics_.load(std::memory_order_acquire)) m->add("dagrun_notifications_total", {n.type, why.empty() ? "sent" : "failed"});
    if (why.empty()) return;
    const std::string line = "alert " + a.event + " of " + a.dag_id + (a.task_id.empty() ? "" : "." + a.task_id) + " (" + a.run_id +
                             "): " + n.type + " notifier failed: " + why;
    if (options_.warn) options_.warn(line);
    else std::cerr << line << std::endl;
  });
}

// A metadata job a try handed to the loop: the try waits on it until the loop ran it, or takes
// it back (cancelled) when the try must stop before the loop got to it.
struct engine::metadata_request {
  enum class phase { pending, running, done, cancelled };
  const metadata_job* job = nullptr;
  std::exception_ptr error;
  phase at = phase::pending;
  std::mutex m;
  std::condition_variable_any cv;
};

std::function<bool(const metadata_job&, std::stop_token)> engine::metadata_for_tries() {
  return [this](const metadata_job& job, std::stop_token stop) {
    auto request = std::make_shared<metadata_request>();
    request->job = &job;
    {
      std::lock_guard lock(events_mutex_);
      metadata_requests_.push_back(request);
    }
    posts_.fetch_add(1, std::memory_order_release);
    events_cv_.notify_all();
    std::unique_lock lock(request->m);
    request->cv.wait(lock, stop, [&] { return request->at == metadata_request::phase::done; });
    if (request->at == metadata_request::phase::pending) {
      request->at = metadata_request::phase::cancelled;  // the loop skips it: `job` dies with the caller
      return false;
    }
    // Running on the loop now: it refers to the caller's job, so wait for it to end.
    request->cv.wait(lock, [&] { return request->at == metadata_request::phase::done; });
    if (request->error) std::rethrow_exception(request->error);
    return true;
  };
}

void engine::run_metadata_jobs() {
  std::deque<std::shared_ptr<metadata_request>> requests;
  {
    std::lock_guard lock(events_mutex_);
    requests.swap(metadata_requests_);
  }
  if (requests.empty()) return;
  pools_open_.reset();  // a job may clear or mark tries in flight
  const auto dags = definitions();
  std::vector<run_key> changed;
  metadata_view view{store_, *dags, [&](const std::string& dag_id, const std::string& run_id) {
                       changed.push_back({dag_id, run_id});
                     }};
  for (const auto& request : requests) {
    {
      std::lock_guard lock(request->m);
      if (request->at == metadata_request::phase::cancelled) continue;
      request->at = metadata_request::phase::running;
    }
    try {
      (*request->job)(view);
    } catch (...) {
      request->error = std::current_exception();
    }
    {
      std::lock_guard lock(request->m);
      request->at = metadata_request::phase::done;
    }
    request->cv.notify_all();
  }
  // A run a job created or cleared is advanced by this engine from now on, even one that does
  // not adopt the store's runs; one it tracks already is re-read (a clear changed it).
  for (const auto& key : changed) {
    active_.erase(key);
    load_run(key);
  }
}

void engine::queue_alert(alert a, std::vector<notifier_spec> notifiers) {
  if (!notifiers.empty()) pending_alerts_.emplace_back(std::move(a), std::move(notifiers));
}

void engine::send_alerts() {
  // Connections are looked up here, on the loop's thread: the store is not the sender's to read.
  auto lookup = [this](std::string_view id) -> std::optional<connection> {
    if (auto c = connection_from_environment(id)) return c;
    return store_.find_connection(std::string(id));
  };
  for (auto& [a, notifiers] : pending_alerts_) {
    std::vector<notifier_job> jobs;
    for (const auto& n : notifiers) jobs.push_back(alert_dispatcher::resolve(n, lookup));
    alerts_->post(std::move(a), std::move(jobs));
  }
  pending_alerts_.clear();
}

engine::~engine() {
  if (executor_) {
    executor_->cancel_all();
    executor_->drain();
  }
}

timestamp engine::now_us() const { return clock_.precise_now(); }

namespace {
// Adds each problem dag::check finds in `d` to `problems`, a line each. An unchecked definition
// would run with its tasks' settings (retries, timeouts) ignored.
void add_problems(definition& d, const operator_catalog& operators, std::string& problems) {
  for (const auto& p : check(d, operators)) problems += "\n  " + std::string(p.what());
}

definition_error refusal(const std::string& problems) {
  return definition_error("the engine refuses invalid DAGs:" + problems);
}
}  // namespace

void engine::set_dags(std::vector<definition> dags) {
  // Checked in place, then shared: the other overload finds them checked and copies none.
  std::string problems;
  std::vector<shared_definition> shared;
  shared.reserve(dags.size());
  for (auto& d : dags) {
    add_problems(d, operators_, problems);
    shared.push_back(std::make_shared<const definition>(std::move(d)));
  }
  if (!problems.empty()) throw refusal(problems);
  set_dags(std::move(shared));
}

void engine::set_dags(std::vector<shared_definition> dags) {
  std::string problems;
  for (auto& d : dags) {
    if (!d) throw refusal("\n  a null shared_definition");
    if (d->checked_with(operators_.stamp())) continue;
    definition copy = *d;  // shared read-only: checked as a copy, which replaces it here
    add_problems(copy, operators_, problems);
    d = std::make_shared<const definition>(std::move(copy));
  }
  if (!problems.empty()) throw refusal(problems);
  // A definition the engine schedules already (the same shared one: the daemon's reload keeps the
  // DAGs of unchanged files) keeps its scheduled form, so its runs are not read again.
  std::map<std::string, std::shared_ptr<const scheduled_dag>> next;
  for (auto& d : dags) {
    std::string id = d->id();
    if (next.contains(id)) continue;  // a duplicate id: the first one counts
    const auto known = dags_.find(id);
    if (known != dags_.end() && known->second->def == d) next.emplace(std::move(id), known->second);
    else next.emplace(std::move(id), std::make_shared<const scheduled_dag>(std::move(d)));
  }
  // A changed schedule, catchup or max_active_runs may make a run due sooner.
  std::erase_if(nothing_due_until_, [&](const auto& entry) {
    const auto now = next.find(entry.first), before = dags_.find(entry.first);
    return now == next.end() || before == dags_.end() || now->second != before->second;
  });
  for (const auto& [id, d] : dags_)
    if (!next.contains(id)) retired_[id] = d;
  for (const auto& [id, d] : next) retired_.erase(id);
  const auto before = std::exchange(dags_, std::move(next));
  // Consumers of datasets as the store last knew them: what a DAG that left or changed stops
  // consuming is judged against it when the registration below (or its retry) reaches the store.
  if (!datasets_pending_) datasets_before_ = before;
  datasets_pending_ = true;
  auto published = std::make_shared<std::vector<shared_definition>>();
  published->reserve(dags_.size());
  for (const auto& [id, d] : dags_) published->push_back(d->def);
  {
    std::lock_guard lock(published_mutex_);
    definitions_ = std::move(published);
  }
  // Active runs follow the new definition of their DAG (task instances are matched by task id);
  // runs of a DAG that left keep its last one, and wait.
  for (auto it = active_.begin(); it != active_.end();) {
    auto found = dags_.find(it->first.dag_id);
    if (found == dags_.end()) {
      ++it;
      continue;
    }
    if (found->second != it->second.dag) {
      const run_key key = it->first;
      it = active_.erase(it);
      load_run(key);
      continue;
    }
    ++it;
  }
  load_active_runs();
  pools_open_.reset();
  warn_missing_pools();
  // Last, after the new DAGs are published and their runs re-bound: a store that fails here
  // leaves the registration pending, and every pass tries it again (register_pending_datasets).
  register_pending_datasets();
}

void engine::register_pending_datasets() {
  if (!datasets_pending_) return;
  register_datasets(datasets_before_);
  datasets_pending_ = false;
  datasets_before_.clear();
}

void engine::warn_missing_pools() {
  std::set<std::string> known;
  for (const auto& p : store_.pools()) known.insert(p.name);
  for (const auto& [id, d] : dags_)
    for (const auto& t : d->def->all_tasks()) {
      if (known.contains(t.settings.pool) || !warned_pools_.insert(id + "\n" + t.id + "\n" + t.settings.pool).second) continue;
      const std::string line = "DAG '" + id + "' task '" + t.id + "': pool '" + t.settings.pool +
                               "' does not exist; its tries wait until it does (dagrun pools set " + t.settings.pool + " SLOTS)";
      if (options_.warn) options_.warn(line);
      else std::cerr << line << std::endl;
    }
}

void engine::register_datasets(const std::map<std::string, std::shared_ptr<const scheduled_dag>>& before) {
  std::vector<std::string> uris;
  std::map<std::string, std::vector<std::string>> consumers;
  for (const auto& [id, d] : dags_) {
    for (const auto& t : d->def->all_tasks()) uris.insert(uris.end(), t.outlets.begin(), t.outlets.end());
    if (const auto& on = d->def->dataset_schedule()) consumers[id] = on->uris();
  }
  // A DAG no longer scheduled on datasets stops consuming them (a DAG that left keeps its queue).
  for (const auto& [id, d] : before)
    if (d->def->dataset_schedule() && dags_.contains(id)) consumers.try_emplace(id);
  if (uris.empty() && consumers.empty()) return;  // no datasets: no store round trip
  store_.register_datasets(uris, consumers);
  check_datasets_ = true;
}

void engine::create_dataset_runs() {
  if (!options_.create_scheduled_runs || !check_datasets_) return;
  check_datasets_ = false;
  const bool any = std::any_of(dags_.begin(), dags_.end(), [](const auto& d) { return d.second->def->dataset_schedule().has_value(); });
  if (!any) return;
  const auto queued = store_.queued_datasets();
  for (const auto& [dag_id, updated] : queued) {
    const auto found = dags_.find(dag_id);
    if (found == dags_.end() || paused_.contains(dag_id)) continue;
    const auto& on = found->second->def->dataset_schedule();
    if (!on || !on->met_by(updated)) continue;
    // The run takes every queued dataset the condition names (with `|`, those not needed too,
    // as Airflow empties the DAG's queue).
    std::set<std::string> taken;
    for (const auto& uri : on->uris())
      if (updated.contains(uri)) taken.insert(uri);
    // Its logical date is now, or a second after the DAG's latest dataset-triggered run when that
    // is as late (run ids are to the second): two updates in one second get two runs.
    time_point date = clock_.now();
    run_filter latest;
    latest.dag_id = dag_id;
    latest.logical_from = date;
    for (const auto& r : store_.runs(latest))
      if (r.type == run_type::dataset_triggered && r.logical_date >= date) date = r.logical_date + std::chrono::seconds{1};
    const run_record run = make_run_record(*found->second, run_type::dataset_triggered, date);
    std::vector<std::string> ids;
    for (const auto& t : found->second->def->all_tasks()) ids.push_back(t.id);
    if (store_.create_dataset_run(run, ids, taken)) load_run({dag_id, run.run_id});
    else check_datasets_ = true;  // another scheduler took it, or the run id was taken this second: look again
  }
}

metrics_registry& engine::metrics() {
  std::lock_guard lock(published_mutex_);
  if (auto* m = metrics_.load(std::memory_order_acquire)) return *m;
  own_metrics_ = std::make_unique<metrics_registry>();
  declare_engine_metrics(*own_metrics_);
  // Published after its families are declared: the loop may be running and record at once.
  metrics_.store(own_metrics_.get(), std::memory_order_release);
  return *own_metrics_;
}

std::shared_ptr<const std::vector<shared_definition>> engine::definitions() const {
  std::lock_guard lock(published_mutex_);
  return definitions_;
}

const std::shared_ptr<const scheduled_dag>* engine::dag_for(const std::string& dag_id) const {
  if (auto it = dags_.find(dag_id); it != dags_.end()) return &it->second;
  if (auto it = retired_.find(dag_id); it != retired_.end()) return &it->second;
  return nullptr;
}

const scheduled_dag* engine::find_dag(const std::string& dag_id) const {
  auto it = dags_.find(dag_id);
  return it == dags_.end() ? nullptr : it->second.get();
}

bool engine::load_run(const run_key& key) {
  const auto* dag = dag_for(key.dag_id);
  if (!dag) return false;
  auto run = store_.find_run(key.dag_id, key.run_id);
  if (!run) {
    if (options_.run_ended) options_.run_ended(key, std::nullopt);  // deleted meanwhile
    return false;
  }
  track_loaded(*dag, std::move(*run), store_.task_instances(key.dag_id, key.run_id));
  return true;
}

void engine::track_loaded(const std::shared_ptr<const scheduled_dag>& dag, run_record run,
                          std::vector<task_instance_record> stored) {
  run_key key{run.dag_id, run.run_id};
  active_run r{dag, std::move(run), {}, {}};
  // An instance the store has no row of (a run just created, a task added since) is what a new
  // row holds: state none, no try, the record's defaults (the schema's defaults too).
  const auto& tasks = r.dag->def->all_tasks();
  r.tis.resize(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    r.tis[i].dag_id = key.dag_id;
    r.tis[i].run_id = key.run_id;
    r.tis[i].task_id = tasks[i].id;
  }
  // Slots (see run_progress): each task's instance with the lowest map index in its own slot, the
  // other instances of mapped tasks after them (the store lists them by task, then map index).
  std::vector<bool> placed(tasks.size(), false);
  for (auto& ti : stored) {
    const auto index = r.dag->def->index_of(ti.task_id);
    if (!index) continue;
    if (!placed[*index]) {
      placed[*index] = true;
      r.tis[*index] = std::move(ti);
    } else {
      r.tis.push_back(std::move(ti));
    }
  }
  active_[std::move(key)] = std::move(r);
}

std::vector<waiting_dag> waiting_dags(store& s, const std::vector<shared_definition>& loaded) {
  run_filter active;
  active.states = {run_state::queued, run_state::running};
  std::set<std::string> ids;
  for (const auto& run : s.runs(active)) ids.insert(run.dag_id);
  for (const auto& d : loaded) ids.erase(d->id());
  std::vector<waiting_dag> out;
  for (const auto& id : ids) out.push_back({id, ""});
  return out;
}

std::vector<import_error_record> import_errors_of(const dag_folder& folder, const std::vector<waiting_dag>& waiting,
                                                  const std::filesystem::path& folder_path) {
  std::vector<import_error_record> out;
  std::set<std::string> reported;
  for (const auto& p : folder.problems) {
    out.push_back({p.where().file, p.what()});
    reported.insert(p.where().file);
  }
  for (const auto& w : waiting) {
    if (!w.file.empty() && reported.contains(w.file)) continue;  // broken or unreadable: said already
    const std::string which = "DAG '" + w.dag_id + "'";
    std::error_code ec;
    if (w.file.empty())
      out.push_back({folder_path.string(), folder_path.string() + ": no file defines " + which +
                                               ", which has unfinished runs: they wait until one does"});
    else if (!std::filesystem::exists(w.file, ec))
      out.push_back({w.file, w.file + ": file not found: " + which + " has unfinished runs, which wait until it is back"});
    else
      out.push_back({w.file, w.file + ": no longer defines " + which +
                                 ", which has unfinished runs: they wait until a file defines it again"});
  }
  return out;
}

std::vector<waiting_dag> engine::waiting_dags() const {
  std::vector<waiting_dag> out;
  for (const auto& id : unloaded_with_runs_) {
    if (dags_.contains(id)) continue;
    auto retired = retired_.find(id);
    out.push_back({id, retired == retired_.end() ? std::string() : retired->second->def->where().file});
  }
  return out;
}

void engine::load_active_runs() {
  if (!options_.adopt_store_runs) return;
  run_filter active;
  active.states = {run_state::queued, run_state::running};
  std::set<std::string> unloaded;
  std::set<run_key> listed;
  for (const auto& run : store_.runs(active)) {
    if (!dags_.contains(run.dag_id)) unloaded.insert(run.dag_id);
    run_key key{run.dag_id, run.run_id};
    listed.insert(key);
    auto it = active_.find(key);
    // A run the store moved back to `queued` behind our back was cleared: take the store's view.
    if (it != active_.end() && !(run.state == run_state::queued && it->second.run.state != run_state::queued)) continue;
    if (it != active_.end()) active_.erase(it);
    load_run(key);
  }
  // A run this engine holds that the store no longer lists as active was finished or deleted by
  // another process (another scheduler on the same queue, the API): read again, it is told about
  // and let go of by the pass (advance_runs; a run of a DAG that left the folder too), or dropped.
  std::vector<run_key> gone;
  for (const auto& [key, r] : active_)
    if (!listed.contains(key)) gone.push_back(key);
  for (const run_key& key : gone)
    if (!load_run(key)) active_.erase(key);
  unloaded_with_runs_ = std::move(unloaded);
}

std::size_t engine::recover_lost_tries() {
  change_set changes;
  const timestamp now = now_us();
  auto candidates = store_.task_instances_in({task_state::queued, task_state::running});
  // A try whose end the engine holds (replayed from the local executor's spool, or waiting for its
  // DAG) is not lost, and not the executor's to judge: its own end is recorded instead. An end of
  // an earlier poke of a rescheduled try is not the running poke's, and does not shield it.
  const std::vector<task_event> pending = unrecorded_ends();
  std::erase_if(candidates, [&](const task_instance_record& ti) {
    return std::any_of(pending.begin(), pending.end(), [&](const task_event& e) {
      return e.dag_id == ti.dag_id && e.run_id == ti.run_id && e.task_id == ti.task_id && e.map_index == ti.map_index &&
             e.try_number == ti.try_number && of_poke(ti, e);
    });
  });
  std::vector<recorded_try> recorded;
  recorded.reserve(candidates.size());
  for (const auto& ti : candidates)
    recorded.push_back({ti.dag_id, ti.run_id, ti.task_id, ti.try_number, ti.hostname, ti.pid, ti.start_date, ti.map_index});
  const std::vector<bool> lost = executor_->lost(recorded, options_.hostname, now);
  std::size_t count = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (i >= lost.size() || !lost[i]) continue;
    task_instance_record& ti = candidates[i];
    const auto* dag = dag_for(ti.dag_id);
    const task_state expected = ti.state;
    const int expected_try = ti.try_number;
    try_record r;
    if (dag) {
      if (auto index = (*dag)->def->index_of(ti.task_id)) {
        r = lose_try((*dag)->def->all_tasks()[*index], ti, "executor lost: the process running this try died", now);
      }
    }
    if (r.task_id.empty()) {  // its DAG or task is gone: no retries to apply
      ti.state = task_state::failed;
      ti.end_date = now;
      ti.message = "executor lost: the process running this try died";
      r = try_record_of(ti);
    }
    changes.task_instances.push_back(update_of(ti, expected, expected_try));
    changes.tries.push_back(r);
    ++count;
  }
  // Read again: the runs whose tries it failed, and those this engine neither read nor moved on
  // (an end recorded, a try started) since the last sweep, which another scheduler on the same
  // queue may be moving on (its workers' ends go to it). A run this engine keeps moving on is not:
  // reading a 20,000-task run's rows every lease, and deciding it afresh, was for nothing. Its
  // view is read again when one of its writes or ends does not match the store (settle_lost,
  // record_events), or by a sweep once it stopped moving here for a lease: a run both schedulers
  // move on shows the other's ends here within two leases of waiting on them.
  std::set<run_key> reread;
  for (const auto& u : changes.task_instances) reread.insert({u.record.dag_id, u.record.run_id});
  if (!changes.empty()) {
    store_.apply(changes);
    pools_open_.reset();
  }
  // (Not a run of a DAG that left the folder: nothing moves it on here, and the poll lets go of it
  // once another process finishes it.)
  for (const auto& [key, r] : active_)
    if (!r.kept_up && dags_.contains(key.dag_id)) reread.insert(key);
  for (const run_key& key : reread)
    if (active_.contains(key) && !load_run(key)) active_.erase(key);
  for (auto& [key, r] : active_) r.kept_up = false;  // a lease starts (those just read too)
  return count;
}

run_record make_run_record(const scheduled_dag& d, run_type type, time_point logical_date, const std::string& conf,
                           const std::string& run_id) {
  run_record run;
  run.dag_id = d.def->id();
  run.type = type;
  run.run_id = run_id.empty() ? make_run_id(type, logical_date) : run_id;
  run.logical_date = logical_date;
  run.conf = conf;
  // A manual run's interval is inferred as Airflow's infer_manual_data_interval does; a backfill
  // run takes the schedule's interval at its date.
  if (type == run_type::manual) run.interval = d.times.manual_interval(logical_date);
  else if (auto scheduled = d.times.run_at(logical_date)) run.interval = scheduled->interval;
  else run.interval = {logical_date, logical_date};
  return run;
}

namespace {

/// Writes `runs` of `d` with their task instances (state none), all in one transaction; per run,
/// the record written, or nullopt when a run with its id or logical date existed.
std::vector<std::optional<run_record>> write_new_runs(store& s, const scheduled_dag& d, std::vector<run_record> runs) {
  std::vector<std::string> ids;
  for (const auto& t : d.def->all_tasks()) ids.push_back(t.id);
  change_set changes;
  changes.new_runs.reserve(runs.size());
  for (auto& run : runs) changes.new_runs.emplace_back(std::move(run), ids);
  const change_result result = s.apply(changes);
  std::vector<std::optional<run_record>> out;
  out.reserve(changes.new_runs.size());
  for (std::size_t i = 0; i < changes.new_runs.size(); ++i) {
    if (i < result.runs_created.size() && result.runs_created[i]) out.emplace_back(std::move(changes.new_runs[i].first));
    else out.emplace_back();
  }
  return out;
}

}  // namespace

std::optional<run_record> create_run_record(store& s, const scheduled_dag& d, run_type type, time_point logical_date,
                                            const std::string& conf, const std::string& run_id) {
  return std::move(write_new_runs(s, d, {make_run_record(d, type, logical_date, conf, run_id)}).front());
}

std::optional<run_key> engine::create_run(const std::string& dag_id, run_type type, time_point logical_date,
                                          const std::string& conf) {
  return std::move(create_runs(dag_id, type, {logical_date}, conf).front());
}

std::vector<std::optional<run_key>> engine::create_runs(const std::string& dag_id, run_type type,
                                                        const std::vector<time_point>& logical_dates, const std::string& conf) {
  auto dag_it = dags_.find(dag_id);
  if (dag_it == dags_.end()) throw usage_error("unknown DAG '" + dag_id + "'");
  std::vector<std::string> ids;
  for (const auto& t : dag_it->second->def->all_tasks()) ids.push_back(t.id);
  change_set changes;
  changes.new_runs.reserve(logical_dates.size());
  std::vector<run_key> keys;
  for (const time_point date : logical_dates) {
    run_record run = make_run_record(*dag_it->second, type, date, conf);
    keys.push_back({dag_id, run.run_id});
    changes.new_runs.emplace_back(std::move(run), ids);
  }
  // Their first pass (without starting a try: that is the loop's) is written with them.
  std::vector<task_request> starts;
  std::vector<try_id> stops;
  std::optional<timestamp> wake;
  const std::set<run_key> fresh = track_new_runs(changes);  // a date given twice is one run
  std::set<run_key> not_created;
  std::set<run_key> lost;
  try {
    advance_runs(changes, starts, stops, wake, &fresh);
    lost = apply_by_run(changes, {}, &not_created);
  } catch (...) {
    uncounted_.clear();
    forget_unwritten(fresh);
    throw;
  }
  count_written(lost, {});
  // A run its first pass finished (it gave up on a previous run, say) is told about by the loop's
  // next pass: the caller learns of its runs from this call first.
  try {
    settle_lost(lost, not_created, fresh);
  } catch (...) {
    hold_finished_runs(lost);
    throw;
  }
  hold_finished_runs(lost);
  std::vector<std::optional<run_key>> out;
  out.reserve(keys.size());
  std::set<run_key> given;
  for (auto& key : keys) {
    if (!fresh.contains(key) || not_created.contains(key) || !given.insert(key).second) out.emplace_back();
    else out.push_back(std::move(key));
  }
  return out;
}

std::set<run_key> engine::track_new_runs(change_set& changes) {
  std::set<run_key> fresh;
  std::erase_if(changes.new_runs, [&](const auto& n) {
    const run_record& run = n.first;
    run_key key{run.dag_id, run.run_id};
    const auto* dag = dag_for(run.dag_id);
    // One the engine has, the store has: not created again (nor a second copy of one).
    if (!dag || active_.contains(key)) return true;
    track_loaded(*dag, run, {});  // as it will be written: nothing to read back
    fresh.insert(std::move(key));
    return false;
  });
  return fresh;
}

void engine::count_written(const std::set<run_key>& lost, const std::vector<bool>& kept) {
  auto* m = metrics_.load(std::memory_order_acquire);
  for (const auto& u : std::exchange(uncounted_, {})) {
    if (!m || (u.run && lost.contains(*u.run))) continue;
    if (u.end_update && *u.end_update < kept.size() && !kept[*u.end_update]) continue;
    if (u.observed) m->observe(u.name, *u.observed, u.labels);
    else m->add(u.name, u.labels);
  }
}

void engine::forget_unwritten(const std::set<run_key>& fresh) {
  // Let go of from active_, they are read again: one this engine finished is still active in the
  // store, but an engine that does not adopt the store's runs would not look; one another process
  // finished is not active there, and no look at the store's active runs would find it again.
  for (auto& [key, state] : std::exchange(finished_runs_, {}))
    if (!fresh.contains(key)) reread_.insert(std::move(key));
  for (const run_key& key : fresh) {
    active_.erase(key);
    drop_alerts(key, false);
  }
}

void engine::drop_alerts(const run_key& key, bool run_level_only) {
  std::erase_if(pending_alerts_, [&](const auto& queued) {
    return (!run_level_only || queued.first.task_id.empty()) && queued.first.dag_id == key.dag_id &&
           queued.first.run_id == key.run_id;
  });
}

void engine::hold_finished_runs(const std::set<run_key>& lost) {
  for (auto& [key, state] : std::exchange(finished_runs_, {}))
    if (!lost.contains(key)) ended_before_pass_.emplace_back(std::move(key), state);
}

void engine::settle_lost(const std::set<run_key>& lost, const std::set<run_key>& not_created, const std::set<run_key>& fresh) {
  for (const run_key& key : lost) {
    // A run the pass meant to create that existed is another writer's: not this pass's to track,
    // nor to alert about.
    const bool others = not_created.contains(key) && fresh.contains(key);
    drop_alerts(key, !others);
    active_.erase(key);
    if (others) continue;
    // Held until read: a read that fails leaves it to the next pass (reread_runs), which an
    // engine that does not adopt the store's runs would not find again otherwise.
    reread_.insert(key);
    load_run(key);
    reread_.erase(key);
  }
}

void engine::track_run(const run_key& key) {
  if (!load_run(key)) throw error("cannot track run '" + key.run_id + "' of DAG '" + key.dag_id + "'");
}

std::vector<task_event> engine::unrecorded_ends() {
  std::vector<task_event> out = parked_;
  std::lock_guard lock(events_mutex_);
  out.insert(out.end(), events_.begin(), events_.end());
  return out;
}

void engine::note_unkept(std::string problem) {
  if (!problem.empty() && problem != unkept_) {
    const std::string line = "ends not recorded yet are held in memory only: " + problem;
    if (options_.warn) options_.warn(line);
    else std::cerr << line << std::endl;
  }
  unkept_ = std::move(problem);
}

void engine::post(task_event e) {
  bool was_empty = false;
  {
    std::lock_guard lock(events_mutex_);
    was_empty = events_.empty();
    events_.push_back(std::move(e));
    last_post_ = std::chrono::steady_clock::now();
  }
  posts_.fetch_add(1, std::memory_order_release);
  // Only the first event of a batch needs to wake the loop; it takes them all at once. (A loop
  // watching for it rather than sleeping makes the notification cost no system call.)
  if (was_empty) events_cv_.notify_one();
}

std::vector<task_event> engine::take_events() {
  std::vector<task_event> events = std::move(parked_);
  parked_.clear();
  std::lock_guard lock(events_mutex_);
  events.insert(events.end(), std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return events;
}

void engine::record_events(const std::vector<task_event>& events, change_set& changes, end_writes& of_ends) {
  auto slot_of = [](const active_run& r, const task_event& e) -> std::optional<std::size_t> {
    auto index = r.dag->def->index_of(e.task_id);
    if (!index) return std::nullopt;
    if (r.tis[*index].map_index == e.map_index) return index;
    for (std::size_t s = r.dag->def->all_tasks().size(); s < r.tis.size(); ++s)
      if (r.tis[s].map_index == e.map_index && r.tis[s].task_id == e.task_id) return s;
    return std::nullopt;
  };
  // The try this end is of is the one `ti` shows running (or queued, its start not seen yet). A
  // rescheduled sensor pokes again under its try number: an end that names the start of its
  // poke is the running poke's only when that is the start `ti` shows (a late end of an earlier
  // poke, taken again from the queue after its scheduler stalled or died between recording it
  // and acknowledging it, is not).
  auto runs_try_of = [](const task_instance_record& ti, const task_event& e) {
    if (ti.try_number != e.try_number) return false;
    if (ti.state == task_state::queued) return true;
    return ti.state == task_state::running && of_poke(ti, e);
  };
  // Another scheduler may have moved a run on (queue executor, several schedulers): a run whose
  // view here does not show an end's try in flight (no instance for it, an older try, or the same
  // try not running: a rescheduled sensor pokes again under its try number) is read again from
  // the store first, before any end of this pass changes a run in memory, so that a re-read
  // never drops what an earlier end of the same pass recorded.
  std::set<run_key> reread;
  for (const auto& e : events) {
    if (!dag_for(e.dag_id)) continue;
    const run_key key{e.dag_id, e.run_id};
    if (reread.contains(key)) continue;
    auto it = active_.find(key);
    if (it != active_.end()) {
      it->second.kept_up = true;
      const auto slot = slot_of(it->second, e);
      if (slot && (it->second.tis[*slot].try_number > e.try_number || runs_try_of(it->second.tis[*slot], e))) continue;
      active_.erase(it);
    }
    reread.insert(key);
    load_run(key);
  }
  // The same end may come twice (the queue hands an end out again when the pass that took it
  // could not be written): the first is recorded, the repeat ignored. Recorded twice in one
  // pass, both updates would expect the try running, the second would lose its compare-and-set
  // and take the first with it, and the try would stay running with its end acknowledged.
  // Keyed by the poke too: a late end of a rescheduled sensor's earlier poke is no repeat of the
  // running poke's end in the same pass, and must not hide it.
  std::set<std::tuple<std::string_view, std::string_view, std::string_view, int, int, timestamp>> seen;  // into `events`
  for (const auto& e : events) {
    if (!dag_for(e.dag_id)) {
      // No definition to apply its retries with (the DAG file was missing or broken since this
      // engine started): kept, not dropped, until the DAG loads. (The queue reports an end it
      // holds again now and then: one is kept.)
      const bool known = std::any_of(parked_.begin(), parked_.end(), [&](const task_event& p) { return same_try(p, e); });
      if (!known) parked_.push_back(e);
      continue;
    }
    if (!seen.emplace(e.dag_id, e.run_id, e.task_id, e.map_index, e.try_number, e.instance_start).second) continue;
    // Every end was a try in flight. (An executor shared by several schedulers may report a try
    // another one submitted: the floor at zero holds until its own counts correct ours.)
    running_ = std::max(0, running_ - 1);
    dag_running_[e.dag_id] = std::max(0, dag_running_[e.dag_id] - 1);
    auto it = active_.find({e.dag_id, e.run_id});
    if (it == active_.end()) continue;  // no such run
    // A repeat of an end already recorded, or a late one for a try already settled (cleared,
    // lost) or for an earlier poke of a rescheduled try: the try number, state and poke tell, and
    // it is refused.
    const auto slot = slot_of(it->second, e);
    if (!slot) continue;
    if (!runs_try_of(it->second.tis[*slot], e)) continue;
    active_run& r = it->second;
    task_instance_record& ti = r.tis[*slot];
    const task_state expected = ti.state;
    // The store must still show the poke this end names running: another scheduler may have
    // recorded this end already and started the next poke while this one's view stood still. An
    // end that names no poke (from a worker or scheduler older than the field) is taken for
    // whichever runs, as before.
    const std::optional<timestamp> expected_start =
        expected == task_state::running && e.instance_start != timestamp{} ? ti.start_date : std::nullopt;
    ti.pid = e.pid;
    try_end ended = end_try(*r.dag, r.run, r.tis, r.progress, *slot, e.result, e.started, e.ended);
    if (r.dag->uses_past && is_finished(ti.state)) past_changed_.insert(e.dag_id);  // later runs may go on
    changes.tries.push_back(std::move(ended.record));
    const task& t = r.dag->def->all_tasks()[task_of_slot(*r.dag, r.tis, *slot)];
    // The alert is made only for a task with notifiers for this end (its text copies the ids and
    // the log's address): most have none.
    if (std::vector<notifier_spec> notifiers = notifiers_for(t.settings, ti.state); !notifiers.empty()) {
      alert a{std::string(ti.state == task_state::failed ? "failure" : ti.state == task_state::up_for_retry ? "retry" : "success"),
              ti.dag_id, ti.run_id, ti.task_id, e.try_number, std::string(to_string(ti.state)),
              ti.state == task_state::failed || ti.state == task_state::up_for_retry ? ti.message : std::string(),
              options_.base_url.empty() ? ti.log_path : options_.base_url + try_log_path(ti.dag_id, ti.run_id, ti.task_id, e.try_number, ti.map_index),
              r.run.logical_date};
      queue_alert(std::move(a), std::move(notifiers));
    }
    const std::size_t end_update = changes.task_instances.size();
    if (metrics_.load(std::memory_order_acquire)) {
      // Counted when its own update is written, even when its run's other writes are left out
      // (and acknowledged then: no later pass records it again); not when that update lost (the
      // task was marked meanwhile, or another scheduler recorded the same end first).
      uncounted_.push_back({std::nullopt, end_update, "dagrun_task_instance_finished_total",
                            {ti.dag_id, ti.task_id, std::string(to_string(ti.state))}, {}});
      uncounted_.push_back({std::nullopt, end_update, "dagrun_task_duration_seconds", {ti.dag_id, ti.task_id},
                            seconds_of(e.ended - e.started)});
    }
    changes.task_instances.push_back(update_of(ti, expected, e.try_number));
    changes.task_instances.back().expected_start = expected_start;
    // Downstream tasks a branch, short-circuit or latest-only task ruled out, in the same commit.
    for (const task_change& c : ended.skipped) changes.task_instances.push_back(update_of(r.tis[c.index], c.before, c.try_before));
    of_ends.updates.resize(changes.task_instances.size(), end_update);
    // A task's outlets are updated by its success (Airflow's dataset events), in the same commit.
    if (ti.state == task_state::success)
      for (const auto& uri : t.outlets)
        changes.dataset_events.push_back({0, uri, "{}", ti.dag_id, ti.run_id, ti.task_id, e.try_number, e.ended, ti.map_index});
    of_ends.dataset_events.resize(changes.dataset_events.size(), end_update);
    if (e.result.xcom && ti.state == task_state::success)
      changes.xcoms.push_back({ti.dag_id, ti.run_id, ti.task_id, "return_value", *e.result.xcom, ti.map_index});
    if (e.result.outcome == try_outcome::success)
      for (const auto& [xcom_key, value] : e.result.keyed_xcoms)
        changes.xcoms.push_back({ti.dag_id, ti.run_id, ti.task_id, xcom_key, value, ti.map_index});
    of_ends.xcoms.resize(changes.xcoms.size(), end_update);
  }
}

void engine::reload_active_runs() {
  pools_open_.reset();
  for (const auto& [key, r] : active_) reread_.insert(key);
  reread_runs();
  load_active_runs();
}

void engine::reread_runs() {
  // One at a time: a run whose read fails (the database away, a row this build cannot read) stays
  // to be read again next pass, and the others go on meanwhile.
  std::string problem;
  for (auto it = reread_.begin(); it != reread_.end();) {
    try {
      active_.erase(*it);
      load_run(*it);
      it = reread_.erase(it);
    } catch (const std::exception& e) {
      if (problem.empty())
        problem = "cannot read run '" + it->run_id + "' of DAG '" + it->dag_id + "' from the store (" + e.what() +
                  "); it waits and is read again next pass";
      ++it;
    }
  }
  if (!problem.empty() && problem != reread_problem_) {
    if (options_.warn) options_.warn(problem);
    else std::cerr << problem << std::endl;
  }
  reread_problem_ = std::move(problem);
}

void engine::create_due_runs(change_set& changes, std::optional<timestamp>& wake) {
  if (!options_.create_scheduled_runs) return;
  const time_point now = clock_.now();
  const timestamp now_at = now_us();
  for (const auto& [dag_id, d] : dags_) {
    if (paused_.contains(dag_id) || d->times.spec().kind == schedule_kind::none) continue;
    if (auto quiet = nothing_due_until_.find(dag_id); quiet != nothing_due_until_.end()) {
      if (now_at < quiet->second) {
        wake = wake ? std::min(*wake, quiet->second) : quiet->second;
        continue;
      }
      nothing_due_until_.erase(quiet);
    }
    // The latest automated run and every active run decide what comes next.
    std::vector<existing_run> existing;
    run_filter latest;
    latest.dag_id = dag_id;
    latest.automated_only = true;
    latest.limit = 1;
    for (const auto& run : store_.runs(latest))
      if (is_finished(run.state)) existing.push_back({run.logical_date, run.interval, run.type, false});
    for (const auto& [key, r] : active_)
      if (key.dag_id == dag_id) existing.push_back({r.run.logical_date, r.run.interval, r.run.type, true});
    const auto due = due_runs(d->times, d->def->catchup(), d->def->max_active_runs(), existing, now);
    const auto active = std::count_if(existing.begin(), existing.end(), [](const existing_run& r) { return r.active; });
    for (const auto& info : due) {
      run_record run;
      run.dag_id = dag_id;
      run.type = run_type::scheduled;
      run.run_id = make_run_id(run_type::scheduled, info.logical_date);
      run.logical_date = info.logical_date;
      run.interval = info.interval;
      std::vector<std::string> ids;
      for (const auto& t : d->def->all_tasks()) ids.push_back(t.id);
      changes.new_runs.emplace_back(std::move(run), std::move(ids));
    }
    // Wake when the next interval ends.
    std::vector<run_info> next = d->times.runs_after(now, 1);
    if (!next.empty()) {
      const timestamp at = std::chrono::time_point_cast<std::chrono::microseconds>(next.front().run_after);
      wake = wake ? std::min(*wake, at) : at;
      // Only a run of its ending could make one due sooner. A scheduled run another process deletes
      // is not made again before then (Airflow's next run date has moved on too; with catchup the
      // gap is filled when this interval ends).
      if (due.empty() && active < d->def->max_active_runs()) nothing_due_until_[dag_id] = at;
    }
  }
}

task_request engine::prepare_try(active_run& r, std::size_t slot, change_set& changes, timestamp now) {
  const std::size_t index = task_of_slot(*r.dag, r.tis, slot);
  const task& t = r.dag->def->all_tasks()[index];
  task_instance_record& ti = r.tis[slot];
  const task_state expected = task_state::queued;
  ti.state = task_state::running;
  ti.start_date = now;
  if (metrics_.load(std::memory_order_acquire)) {
    // Schedule delay: from the end of the last upstream task to this start.
    std::optional<timestamp> upstream_end;
    for (std::size_t u : r.dag->graph.upstream(index))
      if (r.tis[u].end_date) upstream_end = upstream_end ? std::max(*upstream_end, *r.tis[u].end_date) : *r.tis[u].end_date;
    if (upstream_end)
      uncounted_.push_back({run_key{r.run.dag_id, r.run.run_id}, std::nullopt, "dagrun_schedule_delay_seconds", {},
                            seconds_of(std::max(now - *upstream_end, std::chrono::microseconds(0)))});
  }
  ti.hostname = options_.hostname;
  ti.pid = this_process_id();  // the dagrun process running the try: recovery checks it is gone
  ti.executor = executor_->name();
  ti.log_path = log_file_of(log_folder_, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number);

  task_request req;
  req.keep_alive = r.dag;
  req.definition = &t;
  req.op = operators_.find(t.operator_name);
  // Templates are rendered here, where the store is at hand; a render error fails the try. A task
  // with no fields and no mapping reads nothing through them (most C++ callables): none are made.
  try_sources sources;
  if (!t.fields.empty() || t.mapping.mapped()) {
    sources = store_sources(store_, ti.dag_id, ti.run_id);
    // XComs pushed in this very step are not in the store yet: look at the pending ones first.
    sources.xcom = [this, pending = &changes.xcoms, from_store = std::move(sources.xcom), &ti](std::string_view task_id,
                                                                                               std::string_view key) {
      return xcom_after(store_, *pending, ti.dag_id, ti.run_id, task_id, key, from_store);
    };
  }
  // A mapped instance runs the task with its expanded fields set to its values (read again now, as
  // Airflow does): its own copy of the task, kept alive with the request.
  std::string mapping_error;
  if (t.mapping.mapped() && ti.map_index >= 0) {
    const map_expansion expansion = expand_mapping(t, sources.xcom);
    const auto k = static_cast<std::size_t>(ti.map_index);
    if (!expansion.error.empty()) mapping_error = expansion.error;
    else if (k >= expansion.length)
      mapping_error = "expand: map index " + std::to_string(k) + " is past the " + std::to_string(expansion.length) +
                      " values the task expands to now";
    else {
      auto own = std::make_shared<std::pair<std::shared_ptr<const scheduled_dag>, task>>(
          r.dag, mapped_instance(t, operators_.find(t.operator_name), expansion, k, &mapping_error));
      req.definition = &own->second;
      req.keep_alive = std::move(own);
    }
  }
  try_spec which;
  which.try_number = ti.try_number;
  which.map_index = ti.map_index;
  if (ti.first_start_date) which.waited = now - *ti.first_start_date;  // a rescheduled try runs again
  which.start_date = now;
  req.context = make_try_context(*r.dag->def, *req.definition, req.op, r.run, which, sources);
  // Set here rather than through `which`: a path splits its text into parts when made, and a copy
  // copies them all again.
  req.context.log_path = ti.log_path;
  req.context.time_source = &clock_;
  req.context.metadata = metadata_for_tries();
  if (!mapping_error.empty()) req.context.fields = {{std::string(render_error_field), mapping_error}};
  if (req.context.fields.contains(std::string(render_error_field))) req.op = nullptr;  // runs nothing

  changes.task_instances.push_back(update_of(ti, expected, ti.try_number));
  // The try's own row is written once, when it ends (or is found lost): while it runs, the task
  // instance holds its number, start, host and log path.
  return req;
}

void engine::advance_runs(change_set& changes, std::vector<task_request>& starts, std::vector<try_id>& stops,
                          std::optional<timestamp>& wake, const std::set<run_key>* only) {
  const timestamp now = now_us();
  std::map<std::string, int> runs_running;
  for (const auto& [key, r] : active_)
    if (r.run.state == run_state::running) ++runs_running[key.dag_id];
  int free_slots = !only && accepting_ && !disk_full_ ? options_.parallelism - running_ : 0;
  std::map<std::string, int> starting;  // tries this pass starts, per DAG (not yet submitted)
  // Tries in flight per task, over all runs, for DAGs with a max_active_tis_per_dag task.
  std::map<std::string, std::vector<int>> task_running;
  for (const auto& [key, r] : active_) {
    if (!r.dag->limits_tasks) continue;
    auto& counts = task_running[key.dag_id];
    counts.resize(r.dag->def->all_tasks().size(), 0);
    for (std::size_t s = 0; s < r.tis.size(); ++s)
      if (r.tis[s].state == task_state::queued || r.tis[s].state == task_state::running) ++counts[task_of_slot(*r.dag, r.tis, s)];
  }

  // Open slots per pool over every DAG, as the store counts them, plus the slots of the tries
  // whose ends this pass records (still counted there until it commits). The store checks each
  // claim again when it is written, so that schedulers sharing it never overfill a pool.
  // They are read from the store only when this engine's count may be wrong (see pools_open_):
  // a chain of tasks would otherwise read every pool once per task.
  std::optional<std::map<std::string, int>> pool_open;
  if (free_slots > 0 && !active_.empty()) {
    if (!pools_open_) {
      pools_open_.emplace();
      for (const auto& p : store_.pools()) (*pools_open_)[p.name] = p.open_slots();
    }
    pool_open = *pools_open_;
    count_pool_slots(changes, *pool_open);
  }

  // depends_on_past: runs of DAGs whose task instances finished look again at the tasks that
  // wait on their previous run; what finishes in this pass wakes the next one at once.
  const std::set<std::string> woken = only ? std::set<std::string>{} : std::exchange(past_changed_, {});
  std::set<std::string> woken_later;

  for (auto it = active_.begin(); it != active_.end();) {
    if (only && !only->contains(it->first)) {
      ++it;
      continue;
    }
    active_run& r = it->second;
    if (woken.contains(it->first.dag_id) && r.progress.initialized) {
      const auto& tasks = r.dag->def->all_tasks();
      for (std::size_t i = 0; i < tasks.size(); ++i)
        if (tasks[i].settings.depends_on_past && r.tis[i].state == task_state::none) r.progress.dirty.push_back(i);
    }
    if (!dags_.contains(it->first.dag_id)) {  // its DAG left the folder: the run waits for it
      if (is_finished(r.run.state)) {  // unless another process finished it (load_active_runs)
        finished_runs_.emplace_back(it->first, r.run.state);
        it = active_.erase(it);
        continue;
      }
      ++it;
      continue;
    }
    // A queued run starts only while its DAG is under max_active_runs (oldest first: map order is by
    // run id, which sorts by logical date within a run type).
    if (r.run.state == run_state::queued) {
      if (!accepting_ || runs_running[it->first.dag_id] >= r.dag->def->max_active_runs()) {
        r.waited = true;
        ++it;
        continue;
      }
      ++runs_running[it->first.dag_id];
      // While it waited, a clear or mark may have changed it without changing its state (it
      // stayed queued): start from the store's view. A run loaded and started in one pass (most
      // runs) was just read.
      if (r.waited) {
        const run_key key = it->first;
        if (!load_run(key)) {
          it = active_.erase(it);
          continue;
        }
      }
    }
    const run_state run_before = r.run.state;
    int& started_here = starting[it->first.dag_id];
    std::vector<task_instance_record> past_tis;  // the previous run's, when read from the store
    const previous_run past = r.dag->uses_past ? previous_of(r, past_tis) : previous_run{};
    slot_budget budget{free_slots, dag_running_[it->first.dag_id] + started_here};
    // A paused DAG starts no new tries in the daemon; `run` and `backfill` are explicit requests.
    if (options_.adopt_store_runs && paused_.contains(it->first.dag_id)) budget.free_slots = 0;
    if (r.dag->limits_tasks) budget.task_running = std::move(task_running[it->first.dag_id]);
    if (pool_open) budget.pool_open = std::move(*pool_open);
    const xcom_reader xcoms = [&](std::string_view task_id, std::string_view key) {
      return xcom_after(store_, changes.xcoms, r.run.dag_id, r.run.run_id, task_id, key,
                        [&](std::string_view id, std::string_view k) {
                          return store_.xcom(r.run.dag_id, r.run.run_id, std::string(id), std::string(k));
                        });
    };
    run_step s = step_run(*r.dag, r.run, r.tis, r.progress, now, budget, past, xcoms);
    if (r.dag->uses_past && (is_finished(r.run.state) || std::any_of(s.changed.begin(), s.changed.end(), [&](const task_change& c) {
                               return is_finished(r.tis[c.index].state);
                             })))
      woken_later.insert(it->first.dag_id);
    for (std::size_t i : s.expanded) {
      task_instance_record unexpanded = r.tis[i];
      unexpanded.map_index = -1;
      changes.task_instance_deletes.push_back(std::move(unexpanded));
    }
    if (r.dag->limits_tasks) task_running[it->first.dag_id] = std::move(budget.task_running);
    if (pool_open) *pool_open = std::move(*budget.pool_open);
    if (s.pool_short) pools_reread_ = true;  // another process's tries may have ended meanwhile
    free_slots -= static_cast<int>(s.to_start.size());
    if (!s.to_start.empty()) r.kept_up = true;
    started_here += static_cast<int>(s.to_start.size());
    // A run's first pass may change every instance (a wide fan-out): grown once, not step by step.
    if (const std::size_t need = changes.task_instances.size() + s.changed.size(); need > changes.task_instances.capacity())
      changes.task_instances.reserve(std::max(need, 2 * changes.task_instances.capacity()));
    for (const task_change& c : s.changed) {
      if (std::find(s.to_start.begin(), s.to_start.end(), c.index) != s.to_start.end()) continue;
      changes.task_instances.push_back(update_of(r.tis[c.index], c.before, c.try_before));
      expect_as_before(changes.task_instances.back(), c);
      // Still as the change left it (no later change of the pass moved it on): the state alone.
      changes.task_instances.back().state_only =
          c.state_only && r.tis[c.index].state == task_state::scheduled && r.tis[c.index].try_number == c.try_before;
    }
    for (std::size_t i : s.to_stop) {
      // The try's record is written now: its end, when the executor reports it, is refused (the
      // task instance has left `running`).
      const task_instance_record& ti = r.tis[i];
      changes.tries.push_back(try_record_of(ti));
      stops.push_back({ti.dag_id, ti.run_id, ti.task_id, ti.try_number, ti.map_index});
    }
    for (std::size_t i : s.to_start) {
      // The queued state is transient for the local executor: the try starts right away.
      const auto c = std::find_if(s.changed.begin(), s.changed.end(), [&](const task_change& x) { return x.index == i; });
      task_request req = prepare_try(r, i, changes, now);
      expect_as_before(changes.task_instances.back(), *c);
      starts.push_back(std::move(req));
    }
    if (s.new_run_state) {
      changes.runs.push_back({r.run.dag_id, r.run.run_id, run_before, r.run.state, r.run.start_date, r.run.end_date});
      if (is_finished(r.run.state)) {
        const bool ok = r.run.state == run_state::success;
        queue_alert({ok ? "run_success" : "run_failure", r.run.dag_id, r.run.run_id, "", 0, std::string(to_string(r.run.state)),
                     "", options_.base_url.empty() ? "" : options_.base_url + "/dags/" + percent_encoded(r.run.dag_id), r.run.logical_date},
                    ok ? r.dag->def->on_run_success() : r.dag->def->on_run_failure());
      }
      if (metrics_.load(std::memory_order_acquire) && is_finished(r.run.state)) {
        const std::string state(to_string(r.run.state));
        const run_key key{r.run.dag_id, r.run.run_id};
        uncounted_.push_back({key, std::nullopt, "dagrun_dag_run_finished_total", {r.run.dag_id, state}, {}});
        if (r.run.start_date && r.run.end_date)
          uncounted_.push_back({key, std::nullopt, "dagrun_dag_run_duration_seconds", {r.run.dag_id, state},
                                seconds_of(*r.run.end_date - *r.run.start_date)});
      }
    }
    if (s.wake_at) {
      const timestamp at = std::chrono::time_point_cast<std::chrono::microseconds>(*s.wake_at);
      wake = wake ? std::min(*wake, at) : at;
    }
    if (is_finished(r.run.state)) {
      nothing_due_until_.erase(it->first.dag_id);  // room for its next run
      finished_runs_.emplace_back(it->first, r.run.state);  // told once written (read again if not)
      it = active_.erase(it);
    } else {
      ++it;
    }
  }
  if (!woken_later.empty()) {
    past_changed_.insert(woken_later.begin(), woken_later.end());
    wake = now;
  }
}

previous_run engine::previous_of(const active_run& r, std::vector<task_instance_record>& from_store) {
  previous_run past;
  past.give_up_when_blocked = !options_.adopt_store_runs;
  const active_run* before = nullptr;  // the latest earlier run the engine holds
  for (const auto& [key, other] : active_)
    if (key.dag_id == r.run.dag_id && other.run.logical_date < r.run.logical_date &&
        (!before || other.run.logical_date > before->run.logical_date))
      before = &other;
  run_filter earlier;
  earlier.dag_id = r.run.dag_id;
  earlier.logical_to = r.run.logical_date - std::chrono::seconds(1);
  earlier.limit = 1;
  const auto stored = store_.runs(earlier);
  if (before && (stored.empty() || stored.front().logical_date <= before->run.logical_date)) {
    past.tis = &before->tis;
    past.finished = is_finished(before->run.state);
    return past;
  }
  if (stored.empty()) return past;  // the first run: nothing to wait for
  from_store.assign(r.dag->def->all_tasks().size(), task_instance_record{});  // tasks the previous run lacks keep an empty id
  // As slots: a task's first instance at its index, the other instances of mapped tasks after.
  for (auto& ti : store_.task_instances(stored.front().dag_id, stored.front().run_id))
    if (auto index = r.dag->def->index_of(ti.task_id)) {
      if (from_store[*index].task_id.empty()) from_store[*index] = std::move(ti);
      else from_store.push_back(std::move(ti));
    }
  past.tis = &from_store;
  past.finished = is_finished(stored.front().state);
  return past;
}

void engine::check_slas(change_set& changes, std::optional<timestamp>& wake, const std::set<run_key>& later,
                        std::vector<sla_miss_key>& recorded) {
  const timestamp now = now_us();
  // Only active runs are checked: a run let go of, if it comes back, finds its miss in the store.
  std::erase_if(sla_missed_, [&](const sla_miss_key& id) {
    return !active_.contains(run_key{std::get<0>(id), std::get<1>(id)});
  });
  for (const auto& [key, r] : active_) {
    if (later.contains(key)) continue;
    // Airflow's SLAs concern the schedule's runs: a manual run has no deadline to keep.
    if (r.run.type == run_type::manual) continue;
    const auto& tasks = r.dag->def->all_tasks();
    for (std::size_t i = 0; i < tasks.size() && i < r.tis.size(); ++i) {
      const task& t = tasks[i];
      if (!t.settings.sla) continue;
      // A mapped task is late while any of its instances is (one miss per task and run, as
      // Airflow's SlaMiss has no map index); the first late instance is the one reported.
      const task_instance_record* late = nullptr;
      for (std::size_t s : instance_slots(*r.dag, r.tis, i)) {
        const task_state st = r.tis[s].state;
        if (st != task_state::success && st != task_state::skipped && st != task_state::removed) {
          late = &r.tis[s];
          break;
        }
      }
      if (!late) continue;
      const task_instance_record& ti = *late;
      const timestamp deadline = std::chrono::time_point_cast<std::chrono::microseconds>(r.run.interval.end + *t.settings.sla);
      if (now < deadline) {
        wake = wake ? std::min(*wake, deadline) : deadline;
        continue;
      }
      sla_miss_key id{key.dag_id, key.run_id, t.id};
      if (sla_missed_.contains(id)) continue;
      // Recorded by an earlier scheduler (a restart)? Then it was counted and alerted already.
      event_filter earlier;
      earlier.dag_id = key.dag_id;
      earlier.run_id = key.run_id;
      earlier.task_id = t.id;
      earlier.event = "sla_miss";
      const bool already = !store_.events(earlier).empty();  // marked only once this read succeeded
      sla_missed_.insert(id);
      if (already) continue;
      recorded.push_back(id);
      // Written with the pass whatever its run's fate (apply_by_run keeps the events).
      if (metrics_.load(std::memory_order_acquire))
        uncounted_.push_back({std::nullopt, std::nullopt, "dagrun_sla_misses_total", {key.dag_id, t.id}, {}});
      const std::string message = "missed its sla of " + format_duration(*t.settings.sla) + ": not succeeded by " +
                                  format_iso(std::chrono::floor<std::chrono::seconds>(deadline)) + " (state " +
                                  std::string(to_string(ti.state)) +
                                  (ti.map_index >= 0 ? " at map index " + std::to_string(ti.map_index) : "") + ")";
      changes.events.push_back({0, now, "sla_miss", "scheduler", key.dag_id, key.run_id, t.id,
                                "{\"sla\":\"" + format_duration(*t.settings.sla) + "\",\"deadline\":\"" +
                                    format_iso(std::chrono::floor<std::chrono::seconds>(deadline)) + "\"}"});
      queue_alert({"sla_miss", key.dag_id, key.run_id, t.id, ti.try_number, std::string(to_string(ti.state)), message,
                   options_.base_url.empty() ? ti.log_path
                                             : options_.base_url + try_log_path(ti.dag_id, ti.run_id, ti.task_id, std::max(ti.try_number, 1),
                                                                                ti.map_index),
                   r.run.logical_date},
                  t.settings.on_sla_miss);
    }
  }
}

void engine::poll_store() {
  pools_open_.reset();  // other processes' tries, and `pools set`, show at least at every poll
  if (auto paused = store_.paused_dags(); paused != paused_) {
    paused_ = std::move(paused);
    nothing_due_until_.clear();  // an unpaused DAG may be due
  }
  // Another process may have moved a previous run on: runs waiting on one look again.
  for (const auto& [id, d] : dags_)
    if (d->uses_past) past_changed_.insert(id);
  check_datasets_ = true;  // events of other processes (the API, another scheduler)
  load_active_runs();
  // Tries whose executor lost them while this engine runs (the queue: a scheduler died between
  // committing a try and enqueueing it) would stay running for ever: sweep them.
  if (const auto every = executor_->sweep_interval(); every && now_us() - last_sweep_ >= *every) {
    last_sweep_ = now_us();
    recover_lost_tries();
  }
  // An executor shared by several schedulers may report to another one the end of a try this one
  // handed over: take the executor's count as the truth now and then.
  if (auto counts = executor_->in_flight_by_dag()) {
    dag_running_ = std::move(*counts);
    running_ = 0;
    for (const auto& [dag_id, n] : dag_running_) running_ += n;
  }
}

std::optional<timestamp> engine::step() {
  const auto began = std::chrono::steady_clock::now();
  // A full disk pauses new tries (running ones go on, and their ends are recorded while the
  // store can be written); the tries start once space is back. Asked every pass while full, else
  // at most every 100 ms while 64 MiB are free: the statfs and stats cost a chain of short tasks
  // 8 % of the loop's CPU. Below that, every pass again: hundreds of tries can start in 100 ms.
  if (disk_full_ || began - disk_checked_ >= std::chrono::milliseconds(100)) {
    const auto free = free_log_bytes(options_.log_folder);
    disk_full_ = free && *free < min_free_log_bytes;
    if (!free || *free >= 64 * (std::uintmax_t{1} << 20)) disk_checked_ = began;
  }
  std::optional<timestamp> wake;
  try {
    wake = step_once();
    store_unwritable_ = false;
  } catch (...) {
    store_unwritable_ = true;
    // Every end not recorded yet goes to the executor to keep where it outlives this process (the
    // local executor's spool, which from now on also takes each end as its try ends), wherever
    // the pass failed: a scheduler stopped or killed during a long outage keeps them.
    note_unkept(executor_->hold(unrecorded_ends()));
    if (auto* m = metrics_.load(std::memory_order_acquire)) {
      m->set("dagrun_scheduler_paused", 1, {"store_unwritable"});
      m->set("dagrun_executor_unkept_ends", unkept_.empty() ? 0 : 1);
    }
    throw;
  }
  if (auto* m = metrics_.load(std::memory_order_acquire)) {
    m->set("dagrun_scheduler_paused", disk_full_ ? 1 : 0, {"disk_full"});
    m->set("dagrun_scheduler_paused", store_unwritable_ ? 1 : 0, {"store_unwritable"});
    m->set("dagrun_executor_unkept_ends", unkept_.empty() ? 0 : 1);
    m->set("dagrun_scheduler_heartbeat", seconds_of(now_us().time_since_epoch()));
    m->observe("dagrun_scheduler_loop_duration_seconds",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
    m->set("dagrun_executor_running_tasks", running_);
    m->set("dagrun_executor_open_slots", std::max(0, options_.parallelism - running_));
  }
  if (options_.on_pass) options_.on_pass(std::chrono::steady_clock::now() - began);
  return wake;
}

std::optional<timestamp> engine::step_once() {
  std::optional<timestamp> wake;
  const timestamp now = now_us();
  if (stale_) {
    reload_active_runs();
    stale_ = false;
  } else if (!reread_.empty()) {
    reread_runs();
  }
  if (options_.adopt_store_runs && now - last_poll_ >= options_.poll_interval) {
    poll_store();
    last_poll_ = now;
  }
  run_metadata_jobs();
  const int running_before = running_;
  const std::map<std::string, int> dag_running_before = dag_running_;
  // Alerts queued before this pass (create_runs' first passes, a pass that failed after its
  // commit) are of writes the store holds; this pass's are sent only if it is written.
  const std::size_t alerts_before = pending_alerts_.size();
  std::vector<sla_miss_key> sla_marked;  // SLA misses this pass records
  change_set changes;
  const std::size_t parked = parked_.size();  // taken again every pass: not news
  std::vector<task_event> taken = take_events();
  took_ends_ = taken.size() > parked;
  // An end record_events parked (its DAG is not loaded): not recorded, so neither acknowledged.
  const auto is_parked = [this](const task_event& e) {
    return std::any_of(parked_.begin(), parked_.end(), [&](const task_event& p) { return same_try(p, e); });
  };
  std::vector<task_request> starts;
  std::vector<try_id> stops;
  end_writes of_ends;
  std::set<run_key> fresh, not_created;  // runs this pass creates; of them, those the store had already
  std::set<run_key> lost;                // runs whose writes were left out (apply_by_run)
  bool written = false;                  // the pass is committed
  bool decided = false;                  // and `starts` and `stops` are what it committed
  try {
    // Runs written finished but not told about yet (create_runs' first pass, a pass that failed
    // after its commit): told now (one at a time: a callback that throws leaves the others to the
    // next pass).
    while (!ended_before_pass_.empty()) {
      const auto [key, state] = ended_before_pass_.front();
      ended_before_pass_.erase(ended_before_pass_.begin());
      if (options_.run_ended) options_.run_ended(key, state);
    }
    record_events(taken, changes, of_ends);
    create_due_runs(changes, wake);
    register_pending_datasets();
    create_dataset_runs();
    // New runs are written with this pass, which already decides them (and starts their first
    // tasks): their first updates are their new rows (store_core::apply).
    fresh = track_new_runs(changes);
    advance_runs(changes, starts, stops, wake);
    // Not of a run being created, which the store may refuse (another writer's): the next pass's,
    // right away once it is written (below).
    check_slas(changes, wake, fresh, sla_marked);
    // Tries are handed over only once their start is committed: a start another process refused
    // never runs. (A crash in between leaves a `running` try that recovery records as lost.)
    if (!changes.empty()) {
      // A lost compare-and-set means another process changed that run (cleared or marked a task,
      // say, which puts the run back to queued). The pass's other writes to that run were decided
      // from the same outdated view, so none of them may land (the rest of the pass's runs still
      // do): one lost run's writes are left out and the rest written again, until what is left is
      // written whole.
      // The executor's rows for these starts and ends (the queue's tries, and the deletes of the
      // ends it kept) go in the same transaction where the store can write them: tries only of
      // claims that won; every end this pass records (as `recorded` below), not the parked ones.
      // (A copy without the parked ones only when there are any: a DAG that is not loaded.)
      if (!starts.empty() || taken.size() > parked_.size()) {
        std::vector<task_event> unparked;
        if (!parked_.empty())
          std::copy_if(taken.begin(), taken.end(), std::back_inserter(unparked),
                       [&](const task_event& e) { return !is_parked(e); });
        changes.attachment =
            executor_->attachment_for(starts, parked_.empty() ? std::span<const task_event>(taken) : unparked);
      }
      std::vector<bool> kept;
      lost = apply_by_run(changes, of_ends, &not_created, &kept);
      written = true;
      count_written(lost, kept);
      if (!changes.dataset_events.empty()) {  // what was written: apply_by_run leaves refused ends' out
        check_datasets_ = true;  // consumers may be due: the next pass looks, right away
        wake = now;
      }
      // Carry on with the store's view of each lost run, even when this pass had finished it; its
      // tries this pass would have started do not start.
      for (const run_key& key : lost) {
        std::erase_if(starts, [&](const task_request& s) { return s.context.dag_id == key.dag_id && s.context.run_id == key.run_id; });
        // A try is stopped only where its stop was written (apply_by_run keeps it unless its own
        // compare-and-set lost: the task was cleared or marked meanwhile).
        std::erase_if(stops, [&](const try_id& t) {
          return t.dag_id == key.dag_id && t.run_id == key.run_id &&
                 std::none_of(changes.task_instances.begin(), changes.task_instances.end(), [&](const task_instance_update& u) {
                   return (u.expected == task_state::queued || u.expected == task_state::running) &&
                          u.expected_try == t.try_number && u.record.task_id == t.task_id &&
                          u.record.map_index == t.map_index && u.record.dag_id == t.dag_id && u.record.run_id == t.run_id;
                 });
        });
      }
      decided = true;
      settle_lost(lost, not_created, fresh);
      if (std::any_of(fresh.begin(), fresh.end(), [&](const run_key& k) { return !lost.contains(k); })) wake = now;
    }
    // The store holds this pass's claims and ends now. A lost run may be a claim the store refused
    // (another process filled the pool): the pools are read again.
    if (pools_reread_ || !lost.empty()) pools_open_.reset();
    else if (pools_open_) count_pool_slots(changes, *pools_open_);
    pools_reread_ = false;
    // Runs this pass finished are told about only now that the store holds their end; a lost
    // one's (another process cleared or marked it meanwhile) goes on as the store has it. One at
    // a time: a callback that throws leaves the others to the next pass (hold_finished_runs).
    while (!finished_runs_.empty()) {
      const auto [key, state] = finished_runs_.front();
      finished_runs_.erase(finished_runs_.begin());
      if (!lost.contains(key) && options_.run_ended) options_.run_ended(key, state);
    }
  } catch (...) {
    if (!written) {
      // Decided again from the store next pass (its ends taken again), which queues what still
      // holds: sent now, a failure or a run's end would be told twice, or told of what was not.
      pending_alerts_.erase(pending_alerts_.begin() + static_cast<std::ptrdiff_t>(std::min(alerts_before, pending_alerts_.size())),
                            pending_alerts_.end());
      for (const auto& id : sla_marked) sla_missed_.erase(id);  // not recorded: found again next pass
      uncounted_.clear();  // decided again next pass
      forget_unwritten(fresh);
    } else {
      // In the store already (re-read with the rest next pass): the runs it finished are told
      // about then; a lost run's alerts are not sent.
      hold_finished_runs(lost);
      for (const run_key& key : lost) drop_alerts(key, true);
    }
    // Nothing of this pass counts but what it committed (its starts and stops, below). Its ends go
    // back to be taken again (the local executor has let go of them, so they live here only; the
    // queue still holds its own, unless a commit of this pass deleted them with their records;
    // a repeat is ignored), and the runs, changed in memory, are re-read next pass.
    parked_.clear();
    {
      std::lock_guard lock(events_mutex_);
      events_.insert(events_.begin(), std::make_move_iterator(taken.begin()), std::make_move_iterator(taken.end()));
    }
    running_ = running_before;
    dag_running_ = dag_running_before;
    stale_ = true;
    pools_open_.reset();
    pools_reread_ = false;
    // The store holds the starts and stops of a pass that failed after its commit (reading a lost
    // run back, a run_ended callback): they are carried out all the same. Left out, a try would be
    // `running` with nothing running it, which only a restart's recovery notices with the local
    // executor.
    if (decided) {
      // The executor keeps what it was handed (the queue's unsent buffer goes with the next
      // flush); the pass's own failure is the one reported.
      try {
        hand_over(starts);
      } catch (...) {
      }
      for (const auto& which : stops) {
        try {
          executor_->cancel(which);
        } catch (...) {
        }
      }
    }
    throw;
  }
  // The store holds these ends now: the executor may forget them.
  std::erase_if(taken, is_parked);
  // Ends waiting for their DAG are not recorded either: kept as the ones of a failed pass are
  // (first: `recorded` then tells the executor that the store takes ends again).
  std::string unkept = parked_.empty() ? std::string() : executor_->hold(parked_);
  executor_->recorded(taken);
  // What the pass committed is carried out before anything that may throw (a warning callback).
  hand_over(starts);
  for (const auto& which : stops) executor_->cancel(which);  // only once their skip is committed
  note_unkept(std::move(unkept));
  send_alerts();
  if (options_.adopt_store_runs) {
    const timestamp poll_at = last_poll_ + options_.poll_interval;
    wake = wake ? std::min(*wake, poll_at) : poll_at;
  }
  return wake;
}

void engine::count_pool_slots(const change_set& changes, std::map<std::string, int>& open) {
  for (const auto& u : changes.task_instances) {
    const bool before = holds_pool_slot(u.expected), after = holds_pool_slot(u.record.state);
    if (before == after) continue;
    if (auto p = open.find(u.record.pool); p != open.end()) p->second += before ? u.record.pool_slots : -u.record.pool_slots;
  }
}

std::set<run_key> engine::apply_by_run(change_set& changes, const end_writes& of_ends, std::set<run_key>* not_created,
                                       std::vector<bool>* kept) {
  changes.all_or_nothing = true;
  change_result result = store_.apply(changes);
  if (result.applied) return {};
  // Some compare-and-set lost: the pass is written again without what depends on it, from `all`
  // (indices below are into it; `changes` is what each attempt writes).
  using instance = std::tuple<std::string, std::string, std::string, int>;  // dag, run, task, map index
  const auto instance_of = [](const task_instance_record& r) { return instance{r.dag_id, r.run_id, r.task_id, r.map_index}; };
  const change_set all = changes;
  const std::size_t none = std::numeric_limits<std::size_t>::max();
  // What each update stands or falls with when its run lost: an end (and what its flow rule
  // skipped) with that end; a try the pass stopped (a dagrun_timeout), its instance's first update
  // with a try of its own, with itself; anything else the pass decided goes with the run, to be
  // decided again from the store's view (a retry claimed at once after its try's end, say).
  std::vector<std::size_t> anchor(all.task_instances.size(), none);
  {
    std::set<instance> ended, updated;
    for (const auto& t : all.tries) ended.insert({t.dag_id, t.run_id, t.task_id, t.map_index});
    for (std::size_t i = 0; i < all.task_instances.size(); ++i) {
      const instance key = instance_of(all.task_instances[i].record);
      const bool first = updated.insert(key).second;
      if (i < of_ends.updates.size()) anchor[i] = of_ends.updates[i];
      else if (first && ended.contains(key)) anchor[i] = i;
    }
  }
  std::set<run_key> lost, existed;
  std::vector<bool> lost_cas(all.task_instances.size(), false);  // updates whose own compare-and-set lost
  std::vector<std::size_t> written(all.task_instances.size());   // index in `all` of each update of `changes`
  std::iota(written.begin(), written.end(), std::size_t{0});
  std::vector<bool> keep(all.task_instances.size(), true);
  std::set<instance> refused;  // instances whose first update of the pass lost its compare-and-set
  // What the store has said lost so far: each attempt must say more, or it would go on for ever.
  const auto found = [&] {
    return lost.size() + existed.size() + static_cast<std::size_t>(std::count(lost_cas.begin(), lost_cas.end(), true));
  };
  for (;;) {
    const std::size_t known = found();
    // A new run that existed (another writer created it) is not this pass's: none of its writes land.
    for (std::size_t i = 0; i < changes.new_runs.size() && i < result.runs_created.size(); ++i)
      if (!result.runs_created[i]) {
        const run_record& r = changes.new_runs[i].first;
        lost.insert({r.dag_id, r.run_id});
        existed.insert({r.dag_id, r.run_id});
      }
    for (std::size_t i = 0; i < changes.runs.size() && i < result.runs_updated.size(); ++i)
      if (!result.runs_updated[i]) lost.insert({changes.runs[i].dag_id, changes.runs[i].run_id});
    for (std::size_t i = 0; i < written.size() && i < result.task_instances_updated.size(); ++i)
      if (!result.task_instances_updated[i]) {
        lost_cas[written[i]] = true;
        lost.insert({changes.task_instances[i].record.dag_id, changes.task_instances[i].record.run_id});
      }
    // An update that lost goes, with every later update of its instance (each expects what the
    // one before it wrote); an update of a lost run goes unless what it stands with stays. An
    // update before one that lost stays where it may: the store refuses a claim for want of pool
    // slots (its own count, under the pools' locks or SQLite's write lock) while the end before
    // it won.
    std::set<instance> broken, updated;
    for (std::size_t i = 0; i < all.task_instances.size(); ++i) {
      const task_instance_record& r = all.task_instances[i].record;
      const instance key = instance_of(r);
      const bool first = updated.insert(key).second;
      if (broken.contains(key) || lost_cas[i]) keep[i] = false;
      else if (anchor[i] != none) keep[i] = anchor[i] == i || keep[anchor[i]];
      else keep[i] = !lost.contains({r.dag_id, r.run_id});
      if (!keep[i]) broken.insert(key);
      if (first && lost_cas[i]) refused.insert(key);
    }
    if (found() == known) throw error("the store refused a scheduler pass without saying which run lost");
    changes = all;
    changes.all_or_nothing = true;
    const auto of_lost = [&](const std::string& dag_id, const std::string& run_id) { return lost.contains({dag_id, run_id}); };
    std::erase_if(changes.new_runs, [&](const auto& n) { return existed.contains({n.first.dag_id, n.first.run_id}); });
    std::erase_if(changes.runs, [&](const run_update& u) { return of_lost(u.dag_id, u.run_id); });
    changes.task_instances.clear();
    written.clear();
    for (std::size_t i = 0; i < all.task_instances.size(); ++i)
      if (keep[i]) {
        changes.task_instances.push_back(all.task_instances[i]);
        written.push_back(i);
      }
    // The tries stay: they were made, whatever their task instances became meanwhile. The end of
    // a poke that was refused is written only where its try has no row: a late end of an earlier
    // poke must not overwrite what a later poke wrote, while a poke ended after a clear or a mark
    // is the only record of its try. XComs go with their end (a cleared task's downstream must not
    // read them, nor a marked one's), or with their run.
    const auto refused_pokes = std::stable_partition(changes.tries.begin(), changes.tries.end(), [&](const try_record& t) {
      return t.state != task_state::up_for_reschedule || !refused.contains({t.dag_id, t.run_id, t.task_id, t.map_index});
    });
    std::move(refused_pokes, changes.tries.end(), std::back_inserter(changes.tries_if_absent));
    changes.tries.erase(refused_pokes, changes.tries.end());
    changes.xcoms.clear();
    for (std::size_t j = 0; j < all.xcoms.size(); ++j) {
      const xcom_record& x = all.xcoms[j];
      if (j < of_ends.xcoms.size() ? keep[of_ends.xcoms[j]] : !of_lost(x.dag_id, x.run_id)) changes.xcoms.push_back(x);
    }
    // A dataset event goes with its end: a success the store refused (its try was cleared or
    // marked meanwhile) updates no dataset, as it records no XCom. One recorded stands, whatever
    // its run became.
    changes.dataset_events.clear();
    for (std::size_t j = 0; j < all.dataset_events.size(); ++j)
      if (j >= of_ends.dataset_events.size() || keep[of_ends.dataset_events[j]]) changes.dataset_events.push_back(all.dataset_events[j]);
    std::erase_if(changes.task_instance_deletes, [&](const task_instance_record& d) { return of_lost(d.dag_id, d.run_id); });
    if (not_created) *not_created = existed;
    if (kept) *kept = keep;
    if (changes.empty()) return lost;
    result = store_.apply(changes);
    if (result.applied) return lost;
  }
}

void engine::hand_over(std::vector<task_request>& starts) {
  std::vector<task_event> refused;
  for (auto& req : starts) {
    ++running_;
    ++dag_running_[req.context.dag_id];
    // An executor that refuses one try (a program's own executor may throw) fails that try, as
    // a try that could not start does, and the pass's other starts go on: the store holds them
    // all as started, and a try handed to no one would stay running until a restart's recovery.
    task_event e = event_of(req.context);
    try {
      executor_->submit(std::move(req));
      continue;
    } catch (const std::exception& ex) {
      e.result = operator_result::failed(std::string("the executor refused the try: ") + ex.what());
    } catch (...) {
      e.result = operator_result::failed("the executor refused the try");
    }
    e.result.exit_code = -1;
    e.ended = now_us();
    e.started = e.instance_start != timestamp{} ? std::min(e.instance_start, e.ended) : e.ended;
    refused.push_back(std::move(e));
  }
  starts.clear();
  for (auto& e : refused) post(std::move(e));
  executor_->flush();
}

void engine::run_until(const std::function<bool()>& done, std::stop_token stop) {
  // A stop request must wake the wait below, not only be noticed at its next timeout.
  std::stop_callback wake_on_stop(stop, [this] {
    std::lock_guard lock(events_mutex_);
    events_cv_.notify_all();
  });
  while (!stop.stop_requested()) {
    const std::optional<timestamp> wake = step();
    if (done()) return;
    std::unique_lock lock(events_mutex_);
    auto ready = [&] { return !events_.empty() || !metadata_requests_.empty() || wake_requested_ || stop.stop_requested(); };
    const auto waiting_since = std::chrono::steady_clock::now();
    const bool must_wait = !ready();  // an end already here says nothing about how long one takes
    if (running_ > 0 && took_ends_ && last_wait_short_ && must_wait) {
      // Tries are running and ending, and the last wait for one was short: the next end is likely
      // a moment away (an in-process try's microseconds, a chain's next step). Watch for it a
      // little while before sleeping (spin_wait.hpp), never past the next due time. A loop that
      // waits on processes or longer tries, or only on timeouts (taking no end), sleeps at once:
      // the CPU a watch takes is better left to the tries' processes.
      const std::uint64_t seen = posts_.load(std::memory_order_acquire);
      lock.unlock();
      auto limit = detail::spin_before_sleep;
      if (wake) limit = std::min(limit, std::max(std::chrono::microseconds::zero(),
                                                 std::chrono::duration_cast<std::chrono::microseconds>(*wake - now_us())));
      detail::spin_until([&] { return posts_.load(std::memory_order_acquire) != seen || stop.stop_requested(); }, limit);
      lock.lock();
    }
    if (wake) {
      const auto delay = *wake - now_us();
      if (delay > std::chrono::microseconds::zero()) events_cv_.wait_for(lock, delay, ready);
    } else if (running_ > 0 || !active_.empty() || !reread_.empty()) {
      // Nothing is due: sleep until a try ends (bounded, so a stop request is seen; a run that
      // could not be read is read again after it).
      events_cv_.wait_for(lock, std::chrono::milliseconds(200), ready);
    } else {
      return;  // nothing running, nothing due, nothing to wait for
    }
    // How long the end took to come, up to its post (a sleeping loop's own wake-up left out, so
    // that one slow try does not keep a chain of short ones from watching again). Waits that a
    // due time, wake() or a metadata job ended say nothing about ends.
    if (must_wait && !events_.empty()) last_wait_short_ = last_post_ - waiting_since < detail::spin_before_sleep;
    wake_requested_ = false;
  }
}

void engine::wake() {
  std::lock_guard lock(events_mutex_);
  wake_requested_ = true;
  posts_.fetch_add(1, std::memory_order_release);
  events_cv_.notify_all();
}

std::vector<run_state> engine::run_to_completion(const std::vector<run_key>& keys, std::stop_token stop) {
  auto finished = [&] {
    for (const auto& k : keys)
      if (active_.contains(k) || reread_.contains(k)) return false;
    return running_ == 0;
  };
  run_until(finished, stop);
  std::vector<run_state> states;
  for (const auto& k : keys) states.push_back(state_of(k).value_or(run_state::failed));
  return states;
}

void engine::shutdown(std::chrono::milliseconds grace) {
  accepting_ = false;
  const timestamp deadline = now_us() + grace;
  // Keep recording tries that end by themselves during the grace period.
  while (running_ > 0 && now_us() < deadline) {
    step();
    std::unique_lock lock(events_mutex_);
    events_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return !events_.empty() || !metadata_requests_.empty(); });
  }
  if (running_ > 0) {
    executor_->cancel_all();
    executor_->drain();
  }
  step();
}

std::optional<run_state> engine::state_of(const run_key& key) {
  if (auto it = active_.find(key); it != active_.end()) return it->second.run.state;
  if (auto run = store_.find_run(key.dag_id, key.run_id)) return run->state;
  return std::nullopt;
}

}  // namespace dag
