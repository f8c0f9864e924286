// The scheduler loop. Data moves one way: events in, decisions from the pure core, one
// transaction out, tries to the executor.
#include <dag/engine/engine.hpp>

#include <algorithm>
#include <iostream>
#include <utility>

#include <sys/statvfs.h>
#include <unistd.h>

#include <dag/core/environment.hpp>
#include <dag/notifiers/dispatcher.hpp>
#include <dag/operators/builtin.hpp>
#include <dag/engine/try_context.hpp>
#include <dag/exec/local_executor.hpp>
#include <dag/load/check.hpp>

namespace dag {
namespace {

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

// Airflow's log layout: dag_id=X/run_id=Y/task_id=Z/attempt=N.log (run ids hold ':' and '+').
std::filesystem::path log_path_for(const std::filesystem::path& folder, const task_instance_record& ti) {
  return folder / ("dag_id=" + ti.dag_id) / ("run_id=" + ti.run_id) / ("task_id=" + ti.task_id) /
         ("attempt=" + std::to_string(ti.try_number) + ".log");
}

task_instance_update update_of(const task_instance_record& ti, task_state expected, int expected_try) {
  return {expected, expected_try, ti};
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
  m.counter("dagrun_notifications_total", "Alerts sent by notifiers, by notifier type and result (sent, failed)",
            {"type", "result"});
}

bool disk_full(const std::filesystem::path& folder) {
  // The folder may not exist yet (its first log makes it): ask about the nearest one that does.
  std::filesystem::path at = folder;
  std::error_code ec;
  while (!at.empty() && !std::filesystem::exists(at, ec) && at != at.parent_path()) at = at.parent_path();
  struct statvfs fs {};
  if (at.empty() || ::statvfs(at.c_str(), &fs) != 0) return false;  // cannot tell: not full
  return static_cast<std::uintmax_t>(fs.f_bavail) * fs.f_frsize < min_free_log_bytes;
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
  if (options_.parallelism < 1) throw usage_error("parallelism must be at least 1");
  executor_ = runs_tries ? std::move(runs_tries) : std::make_unique<local_executor>(options_.parallelism);
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

void engine::set_dags(std::vector<definition> dags) {
  // An unchecked definition would run with its tasks' settings (retries, timeouts) ignored.
  std::string problems;
  for (auto& d : dags)
    for (const auto& p : check(d, operators_)) problems += "\n  " + std::string(p.what());
  if (!problems.empty()) throw definition_error("the engine refuses invalid DAGs:" + problems);
  std::map<std::string, std::shared_ptr<const scheduled_dag>> next;
  for (auto& d : dags) {
    std::string id = d.id();
    next.emplace(std::move(id), std::make_shared<const scheduled_dag>(std::move(d)));
  }
  for (const auto& [id, d] : dags_)
    if (!next.contains(id)) retired_[id] = d;
  for (const auto& [id, d] : next) retired_.erase(id);
  const auto before = std::exchange(dags_, std::move(next));
  register_datasets(before);
  auto published = std::make_shared<std::vector<definition>>();
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
}

void engine::register_datasets(const std::map<std::string, std::shared_ptr<const scheduled_dag>>& before) {
  std::vector<std::string> uris;
  std::map<std::string, std::vector<std::string>> consumers;
  for (const auto& [id, d] : dags_) {
    for (const auto& t : d->def.all_tasks()) uris.insert(uris.end(), t.outlets.begin(), t.outlets.end());
    if (const auto& on = d->def.dataset_schedule()) consumers[id] = on->uris();
  }
  // A DAG no longer scheduled on datasets stops consuming them (a DAG that left keeps its queue).
  for (const auto& [id, d] : before)
    if (d->def.dataset_schedule() && dags_.contains(id)) consumers.try_emplace(id);
  if (uris.empty() && consumers.empty()) return;  // no datasets: no store round trip
  store_.register_datasets(uris, consumers);
  check_datasets_ = true;
}

void engine::create_dataset_runs() {
  if (!options_.create_scheduled_runs || !check_datasets_) return;
  check_datasets_ = false;
  const bool any = std::any_of(dags_.begin(), dags_.end(), [](const auto& d) { return d.second->def.dataset_schedule().has_value(); });
  if (!any) return;
  const auto queued = store_.queued_datasets();
  for (const auto& [dag_id, updated] : queued) {
    const auto found = dags_.find(dag_id);
    if (found == dags_.end() || paused_.contains(dag_id)) continue;
    const auto& on = found->second->def.dataset_schedule();
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
    for (const auto& t : found->second->def.all_tasks()) ids.push_back(t.id);
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

std::shared_ptr<const std::vector<definition>> engine::definitions() const {
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
  if (!run) return false;
  active_run r{*dag, *run, {}, {}};
  const auto& tasks = r.dag->def.all_tasks();
  r.tis.resize(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    r.tis[i].dag_id = key.dag_id;
    r.tis[i].run_id = key.run_id;
    r.tis[i].task_id = tasks[i].id;
  }
  for (auto& stored : store_.task_instances(key.dag_id, key.run_id))
    if (auto index = r.dag->def.index_of(stored.task_id)) r.tis[*index] = std::move(stored);
  active_[key] = std::move(r);
  return true;
}

void engine::load_active_runs() {
  if (!options_.adopt_store_runs) return;
  run_filter active;
  active.states = {run_state::queued, run_state::running};
  for (const auto& run : store_.runs(active)) {
    run_key key{run.dag_id, run.run_id};
    auto it = active_.find(key);
    // A run the store moved back to `queued` behind our back was cleared: take the store's view.
    if (it != active_.end() && !(run.state == run_state::queued && it->second.run.state != run_state::queued)) continue;
    if (it != active_.end()) active_.erase(it);
    load_run(key);
  }
}

std::size_t engine::recover_lost_tries() {
  change_set changes;
  const timestamp now = now_us();
  auto candidates = store_.task_instances_in({task_state::queued, task_state::running});
  std::vector<recorded_try> recorded;
  recorded.reserve(candidates.size());
  for (const auto& ti : candidates)
    recorded.push_back({ti.dag_id, ti.run_id, ti.task_id, ti.try_number, ti.hostname, ti.pid, ti.start_date});
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
      if (auto index = (*dag)->def.index_of(ti.task_id)) {
        r = lose_try((*dag)->def.all_tasks()[*index], ti, "executor lost: the process running this try died", now);
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
  if (!changes.empty()) store_.apply(changes);
  for (auto& [key, run] : active_) load_run(key);
  return count;
}

run_record make_run_record(const scheduled_dag& d, run_type type, time_point logical_date, const std::string& conf) {
  run_record run;
  run.dag_id = d.def.id();
  run.type = type;
  run.run_id = make_run_id(type, logical_date);
  run.logical_date = logical_date;
  run.conf = conf;
  if (auto scheduled = d.times.run_at(logical_date)) run.interval = scheduled->interval;
  else run.interval = {logical_date, logical_date};
  return run;
}

std::optional<run_record> create_run_record(store& s, const scheduled_dag& d, run_type type, time_point logical_date,
                                            const std::string& conf) {
  run_record run = make_run_record(d, type, logical_date, conf);
  std::vector<std::string> ids;
  for (const auto& t : d.def.all_tasks()) ids.push_back(t.id);
  change_set changes;
  changes.new_runs.emplace_back(run, std::move(ids));
  auto result = s.apply(changes);
  if (result.runs_created.empty() || !result.runs_created.front()) return std::nullopt;
  return run;
}

std::optional<run_key> engine::create_run(const std::string& dag_id, run_type type, time_point logical_date,
                                          const std::string& conf) {
  auto dag_it = dags_.find(dag_id);
  if (dag_it == dags_.end()) throw usage_error("unknown DAG '" + dag_id + "'");
  auto run = create_run_record(store_, *dag_it->second, type, logical_date, conf);
  if (!run) return std::nullopt;
  run_key key{dag_id, run->run_id};
  load_run(key);
  return key;
}

void engine::track_run(const run_key& key) {
  if (!load_run(key)) throw error("cannot track run '" + key.run_id + "' of DAG '" + key.dag_id + "'");
}

void engine::post(task_event e) {
  bool was_empty = false;
  {
    std::lock_guard lock(events_mutex_);
    was_empty = events_.empty();
    events_.push_back(std::move(e));
  }
  // Only the first event of a batch needs to wake the loop; it takes them all at once.
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

void engine::record_events(const std::vector<task_event>& events, change_set& changes) {
  for (const auto& e : events) {
    if (!dag_for(e.dag_id)) {
      // No definition to apply its retries with (the DAG file was missing or broken since this
      // engine started): kept, not dropped, until the DAG loads. (The queue reports an end it
      // holds again now and then: one is kept.)
      const bool known = std::any_of(parked_.begin(), parked_.end(), [&](const task_event& p) {
        return p.dag_id == e.dag_id && p.run_id == e.run_id && p.task_id == e.task_id && p.try_number == e.try_number;
      });
      if (!known) parked_.push_back(e);
      continue;
    }
    // Every end was a try in flight. (An executor shared by several schedulers may report a try
    // another one submitted: the floor at zero holds until its own counts correct ours.)
    running_ = std::max(0, running_ - 1);
    dag_running_[e.dag_id] = std::max(0, dag_running_[e.dag_id] - 1);
    const run_key key{e.dag_id, e.run_id};
    auto matches = [&](active_run& r) {
      auto index = r.dag->def.index_of(e.task_id);
      if (!index) return false;
      const task_instance_record& ti = r.tis[*index];
      return ti.try_number == e.try_number && (ti.state == task_state::running || ti.state == task_state::queued);
    };
    auto it = active_.find(key);
    // Another scheduler may have moved this run on (queue executor, several schedulers): before
    // refusing a result, look at the store's view of the run.
    if (it == active_.end() || !matches(it->second)) {
      if (it != active_.end()) active_.erase(it);
      if (!load_run(key)) continue;
      it = active_.find(key);
      // A repeat of an end already recorded, or a late one for a try already settled (cleared,
      // lost): the try number tells, and it is refused.
      if (!matches(it->second)) continue;
    }
    active_run& r = it->second;
    const auto index = r.dag->def.index_of(e.task_id);
    task_instance_record& ti = r.tis[*index];
    const task_state expected = ti.state;
    ti.pid = e.pid;
    try_end ended = end_try(*r.dag, r.run, r.tis, r.progress, *index, e.result, e.started, e.ended);
    changes.tries.push_back(std::move(ended.record));
    if (auto* m = metrics_.load(std::memory_order_acquire)) {
      m->add("dagrun_task_instance_finished_total", {ti.dag_id, ti.task_id, std::string(to_string(ti.state))});
      m->observe("dagrun_task_duration_seconds", seconds_of(e.ended - e.started), {ti.dag_id, ti.task_id});
    }
    {
      const task& t = r.dag->def.all_tasks()[*index];
      alert a{std::string(ti.state == task_state::failed ? "failure" : ti.state == task_state::up_for_retry ? "retry" : "success"),
              ti.dag_id, ti.run_id, ti.task_id, e.try_number, std::string(to_string(ti.state)),
              ti.state == task_state::failed || ti.state == task_state::up_for_retry ? ti.message : std::string(),
              options_.base_url.empty() ? ti.log_path : options_.base_url + try_log_path(ti.dag_id, ti.run_id, ti.task_id, e.try_number),
              r.run.logical_date};
      queue_alert(std::move(a), notifiers_for(t.settings, ti.state));
    }
    changes.task_instances.push_back(update_of(ti, expected, e.try_number));
    // Downstream tasks a branch, short-circuit or latest-only task ruled out, in the same commit.
    for (const task_change& c : ended.skipped) changes.task_instances.push_back(update_of(r.tis[c.index], c.before, c.try_before));
    // A task's outlets are updated by its success (Airflow's dataset events), in the same commit.
    if (ti.state == task_state::success)
      for (const auto& uri : r.dag->def.all_tasks()[*index].outlets)
        changes.dataset_events.push_back({0, uri, "{}", ti.dag_id, ti.run_id, ti.task_id, e.try_number, e.ended});
    if (e.result.xcom && ti.state == task_state::success)
      changes.xcoms.push_back({ti.dag_id, ti.run_id, ti.task_id, "return_value", *e.result.xcom});
    if (e.result.outcome == try_outcome::success)
      for (const auto& [xcom_key, value] : e.result.keyed_xcoms)
        changes.xcoms.push_back({ti.dag_id, ti.run_id, ti.task_id, xcom_key, value});
  }
}

void engine::reload_active_runs() {
  std::vector<run_key> keys;
  for (const auto& [key, r] : active_) keys.push_back(key);
  for (const auto& key : keys) {
    active_.erase(key);
    load_run(key);
  }
  load_active_runs();
}

void engine::create_due_runs(change_set& changes, std::optional<timestamp>& wake) {
  if (!options_.create_scheduled_runs) return;
  const time_point now = clock_.now();
  for (const auto& [dag_id, d] : dags_) {
    if (paused_.contains(dag_id) || d->times.spec().kind == schedule_kind::none) continue;
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
    for (const auto& info : due_runs(d->times, d->def.catchup(), d->def.max_active_runs(), existing, now)) {
      run_record run;
      run.dag_id = dag_id;
      run.type = run_type::scheduled;
      run.run_id = make_run_id(run_type::scheduled, info.logical_date);
      run.logical_date = info.logical_date;
      run.interval = info.interval;
      std::vector<std::string> ids;
      for (const auto& t : d->def.all_tasks()) ids.push_back(t.id);
      changes.new_runs.emplace_back(std::move(run), std::move(ids));
    }
    // Wake when the next interval ends.
    std::vector<run_info> next = d->times.runs_after(now, 1);
    if (!next.empty()) {
      const timestamp at = std::chrono::time_point_cast<std::chrono::microseconds>(next.front().run_after);
      wake = wake ? std::min(*wake, at) : at;
    }
  }
}

task_request engine::prepare_try(active_run& r, std::size_t index, change_set& changes, timestamp now) {
  const task& t = r.dag->def.all_tasks()[index];
  task_instance_record& ti = r.tis[index];
  const task_state expected = task_state::queued;
  ti.state = task_state::running;
  ti.start_date = now;
  if (auto* m = metrics_.load(std::memory_order_acquire)) {
    // Schedule delay: from the end of the last upstream task to this start.
    std::optional<timestamp> upstream_end;
    for (std::size_t u : r.dag->graph.upstream(index))
      if (r.tis[u].end_date) upstream_end = upstream_end ? std::max(*upstream_end, *r.tis[u].end_date) : *r.tis[u].end_date;
    if (upstream_end) m->observe("dagrun_schedule_delay_seconds", seconds_of(std::max(now - *upstream_end, std::chrono::microseconds(0))));
  }
  ti.hostname = options_.hostname;
  ti.pid = ::getpid();  // the dagrun process running the try: recovery checks it is gone
  ti.log_path = log_path_for(options_.log_folder, ti).string();

  task_request req;
  req.keep_alive = r.dag;
  req.definition = &t;
  req.op = operators_.find(t.operator_name);
  // Templates are rendered here, where the store is at hand; a render error fails the try.
  try_sources sources = store_sources(store_, ti.dag_id, ti.run_id);
  // XComs pushed in this very step are not in the store yet: look at the pending ones first.
  sources.xcom = [pending = &changes.xcoms, from_store = std::move(sources.xcom), &ti](std::string_view task_id,
                                                                                       std::string_view key) {
    for (auto it = pending->rbegin(); it != pending->rend(); ++it)
      if (it->run_id == ti.run_id && it->dag_id == ti.dag_id && it->task_id == task_id && it->key == key)
        return std::optional<std::string>(it->value);
    return from_store(task_id, key);
  };
  try_spec which;
  which.try_number = ti.try_number;
  if (ti.first_start_date) which.waited = now - *ti.first_start_date;  // a rescheduled try runs again
  which.log_path = ti.log_path;
  req.context = make_try_context(r.dag->def, t, req.op, r.run, which, sources);
  if (req.context.fields.contains(std::string(render_error_field))) req.op = nullptr;  // runs nothing

  changes.task_instances.push_back(update_of(ti, expected, ti.try_number));
  // The try's own row is written once, when it ends (or is found lost): while it runs, the task
  // instance holds its number, start, host and log path.
  return req;
}

void engine::advance_runs(change_set& changes, std::vector<task_request>& starts, std::optional<timestamp>& wake) {
  const timestamp now = now_us();
  std::map<std::string, int> runs_running;
  for (const auto& [key, r] : active_)
    if (r.run.state == run_state::running) ++runs_running[key.dag_id];
  int free_slots = accepting_ && !disk_full_ ? options_.parallelism - running_ : 0;
  std::map<std::string, int> starting;  // tries this pass starts, per DAG (not yet submitted)
  // Tries in flight per task, over all runs, for DAGs with a max_active_tis_per_dag task.
  std::map<std::string, std::vector<int>> task_running;
  for (const auto& [key, r] : active_) {
    if (!r.dag->limits_tasks) continue;
    auto& counts = task_running[key.dag_id];
    counts.resize(r.tis.size(), 0);
    for (std::size_t i = 0; i < r.tis.size() && i < counts.size(); ++i)
      if (r.tis[i].state == task_state::queued || r.tis[i].state == task_state::running) ++counts[i];
  }

  for (auto it = active_.begin(); it != active_.end();) {
    active_run& r = it->second;
    if (!dags_.contains(it->first.dag_id)) {  // its DAG left the folder: the run waits for it
      ++it;
      continue;
    }
    // A queued run starts only while its DAG is under max_active_runs (oldest first: map order is by
    // run id, which sorts by logical date within a run type).
    if (r.run.state == run_state::queued) {
      if (!accepting_ || runs_running[it->first.dag_id] >= r.dag->def.max_active_runs()) {
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
    slot_budget budget{free_slots, dag_running_[it->first.dag_id] + started_here};
    // A paused DAG starts no new tries in the daemon; `run` and `backfill` are explicit requests.
    if (options_.adopt_store_runs && paused_.contains(it->first.dag_id)) budget.free_slots = 0;
    if (r.dag->limits_tasks) budget.task_running = std::move(task_running[it->first.dag_id]);
    run_step s = step_run(*r.dag, r.run, r.tis, r.progress, now, budget);
    if (r.dag->limits_tasks) task_running[it->first.dag_id] = std::move(budget.task_running);
    free_slots -= static_cast<int>(s.to_start.size());
    started_here += static_cast<int>(s.to_start.size());
    for (const task_change& c : s.changed) {
      if (std::find(s.to_start.begin(), s.to_start.end(), c.index) != s.to_start.end()) continue;
      changes.task_instances.push_back(update_of(r.tis[c.index], c.before, c.try_before));
    }
    for (std::size_t i : s.to_start) {
      // The queued state is transient for the local executor: the try starts right away.
      const auto c = std::find_if(s.changed.begin(), s.changed.end(), [&](const task_change& x) { return x.index == i; });
      task_request req = prepare_try(r, i, changes, now);
      changes.task_instances.back().expected = c->before;
      changes.task_instances.back().expected_try = c->try_before;
      starts.push_back(std::move(req));
    }
    if (s.new_run_state) {
      changes.runs.push_back({r.run.dag_id, r.run.run_id, run_before, r.run.state, r.run.start_date, r.run.end_date});
      if (is_finished(r.run.state)) {
        const bool ok = r.run.state == run_state::success;
        queue_alert({ok ? "run_success" : "run_failure", r.run.dag_id, r.run.run_id, "", 0, std::string(to_string(r.run.state)),
                     "", options_.base_url.empty() ? "" : options_.base_url + "/dags/" + percent_encoded(r.run.dag_id), r.run.logical_date},
                    ok ? r.dag->def.on_run_success() : r.dag->def.on_run_failure());
      }
      if (auto* m = metrics_.load(std::memory_order_acquire); m && is_finished(r.run.state)) {
        const std::string state(to_string(r.run.state));
        m->add("dagrun_dag_run_finished_total", {r.run.dag_id, state});
        if (r.run.start_date && r.run.end_date)
          m->observe("dagrun_dag_run_duration_seconds", seconds_of(*r.run.end_date - *r.run.start_date), {r.run.dag_id, state});
      }
    }
    if (s.wake_at) {
      const timestamp at = std::chrono::time_point_cast<std::chrono::microseconds>(*s.wake_at);
      wake = wake ? std::min(*wake, at) : at;
    }
    if (is_finished(r.run.state)) it = active_.erase(it);
    else ++it;
  }
}

void engine::poll_store() {
  paused_ = store_.paused_dags();
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
  // store can be written); the tries start once space is back.
  disk_full_ = disk_full(options_.log_folder);
  std::optional<timestamp> wake;
  try {
    wake = step_once();
    store_unwritable_ = false;
  } catch (...) {
    store_unwritable_ = true;
    if (auto* m = metrics_.load(std::memory_order_acquire)) m->set("dagrun_scheduler_paused", 1, {"store_unwritable"});
    throw;
  }
  if (auto* m = metrics_.load(std::memory_order_acquire)) {
    m->set("dagrun_scheduler_paused", disk_full_ ? 1 : 0, {"disk_full"});
    m->set("dagrun_scheduler_paused", store_unwritable_ ? 1 : 0, {"store_unwritable"});
    m->set("dagrun_scheduler_heartbeat", seconds_of(now_us().time_since_epoch()));
    m->observe("dagrun_scheduler_loop_duration_seconds",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
    m->set("dagrun_executor_running_tasks", running_);
    m->set("dagrun_executor_open_slots", std::max(0, options_.parallelism - running_));
  }
  return wake;
}

std::optional<timestamp> engine::step_once() {
  std::optional<timestamp> wake;
  const timestamp now = now_us();
  if (stale_) {
    reload_active_runs();
    stale_ = false;
  }
  if (options_.adopt_store_runs && now - last_poll_ >= options_.poll_interval) {
    poll_store();
    last_poll_ = now;
  }
  const int running_before = running_;
  const std::map<std::string, int> dag_running_before = dag_running_;
  change_set changes;
  std::vector<task_event> taken = take_events();
  std::vector<task_request> starts;
  try {
    record_events(taken, changes);
    create_due_runs(changes, wake);
    create_dataset_runs();
    if (!changes.new_runs.empty()) {
      // New runs are written first so this pass can already start their first tasks.
      change_set creation;
      creation.new_runs = std::move(changes.new_runs);
      changes.new_runs.clear();
      auto created = store_.apply(creation);
      for (std::size_t i = 0; i < creation.new_runs.size(); ++i)
        if (created.runs_created[i]) load_run({creation.new_runs[i].first.dag_id, creation.new_runs[i].first.run_id});
    }
    advance_runs(changes, starts, wake);
    // Tries are handed over only once their start is committed: a start another process refused
    // never runs. (A crash in between leaves a `running` try that recovery records as lost.)
    if (!changes.empty()) {
      auto result = store_.apply(changes);
      if (!changes.dataset_events.empty()) {
        check_datasets_ = true;  // consumers may be due: the next pass looks, right away
        wake = now;
      }
      // A lost compare-and-set means another process changed that run (cleared or marked a task,
      // say, which puts the run back to queued): reload it from the store, even when this pass had
      // finished it, so that the engine carries on with the store's view.
      for (std::size_t i = 0; i < result.runs_updated.size(); ++i) {
        if (result.runs_updated[i]) continue;
        const run_key key{changes.runs[i].dag_id, changes.runs[i].run_id};
        active_.erase(key);
        load_run(key);
      }
      for (std::size_t i = 0; i < result.task_instances_updated.size(); ++i) {
        if (result.task_instances_updated[i]) continue;
        const auto& rec = changes.task_instances[i].record;
        const run_key key{rec.dag_id, rec.run_id};
        const auto lost = std::remove_if(starts.begin(), starts.end(), [&](const task_request& s) {
          return s.context.dag_id == key.dag_id && s.context.run_id == key.run_id && s.context.task_id == rec.task_id;
        });
        starts.erase(lost, starts.end());
        active_.erase(key);
        load_run(key);
      }
    }
  } catch (...) {
    // Nothing of this pass counts. Its ends go back to be taken again (the local executor has let
    // go of them, so they live here only; the queue still holds its own, and a repeat is ignored),
    // and the runs, changed in memory, are re-read next pass.
    parked_.clear();
    {
      std::lock_guard lock(events_mutex_);
      events_.insert(events_.begin(), std::make_move_iterator(taken.begin()), std::make_move_iterator(taken.end()));
    }
    running_ = running_before;
    dag_running_ = dag_running_before;
    stale_ = true;
    throw;
  }
  // The store holds these ends now: the executor may forget them.
  std::erase_if(taken, [&](const task_event& e) {
    return std::any_of(parked_.begin(), parked_.end(), [&](const task_event& p) {
      return p.dag_id == e.dag_id && p.run_id == e.run_id && p.task_id == e.task_id && p.try_number == e.try_number;
    });
  });
  executor_->recorded(taken);
  hand_over(starts);
  send_alerts();
  if (options_.adopt_store_runs) {
    const timestamp poll_at = last_poll_ + options_.poll_interval;
    wake = wake ? std::min(*wake, poll_at) : poll_at;
  }
  return wake;
}

void engine::hand_over(std::vector<task_request>& starts) {
  for (auto& req : starts) {
    ++running_;
    ++dag_running_[req.context.dag_id];
    executor_->submit(std::move(req));
  }
  starts.clear();
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
    auto ready = [&] { return !events_.empty() || stop.stop_requested(); };
    if (wake) {
      const auto delay = *wake - now_us();
      if (delay > std::chrono::microseconds::zero()) events_cv_.wait_for(lock, delay, ready);
    } else if (running_ > 0 || !active_.empty()) {
      // Nothing is due: sleep until a try ends (bounded, so a stop request is seen).
      events_cv_.wait_for(lock, std::chrono::milliseconds(200), ready);
    } else {
      return;  // nothing running, nothing due, nothing to wait for
    }
  }
}

std::vector<run_state> engine::run_to_completion(const std::vector<run_key>& keys, std::stop_token stop) {
  auto finished = [&] {
    for (const auto& k : keys)
      if (active_.contains(k)) return false;
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
    events_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return !events_.empty(); });
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
