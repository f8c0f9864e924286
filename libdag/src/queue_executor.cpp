// The scheduler's side of the queue.
#include <dag/exec/queue_executor.hpp>

#include <algorithm>

#include "retry_pause.hpp"

namespace dag {

queued_try to_queued_try(const task_request& request) {
  const task_context& c = request.context;
  queued_try t;
  t.dag_id = c.dag_id;
  t.run_id = c.run_id;
  t.task_id = c.task_id;
  t.try_number = c.try_number;
  t.map_index = c.map_index;
  if (request.definition) {
    t.queue = request.definition->settings.queue;
    t.priority = request.definition->settings.priority_weight;
    t.operator_name = request.definition->operator_name;
  }
  t.fields = c.fields;
  t.environment = c.environment;
  t.params = c.params;
  t.log_path = c.log_path.string();
  if (c.timeout) t.timeout_ms = c.timeout->count();
  t.waited_us = c.waited.count();
  t.instance_start = c.start_date;
  t.secrets = c.secrets;
  t.logical_date = c.logical_date;
  t.data_interval_start = c.data_interval_start;
  t.data_interval_end = c.data_interval_end;
  return t;
}

task_context to_task_context(const queued_try& item) {
  task_context c;
  c.dag_id = item.dag_id;
  c.run_id = item.run_id;
  c.task_id = item.task_id;
  c.try_number = item.try_number;
  c.map_index = item.map_index;
  c.fields = item.fields;
  c.environment = item.environment;
  c.params = item.params;
  c.log_path = item.log_path;
  if (item.timeout_ms) c.timeout = std::chrono::milliseconds(*item.timeout_ms);
  c.waited = std::chrono::microseconds(item.waited_us);
  c.start_date = item.instance_start;
  c.secrets = item.secrets;
  c.logical_date = item.logical_date;
  c.data_interval_start = item.data_interval_start;
  c.data_interval_end = item.data_interval_end;
  return c;
}

queue_executor::queue_executor(const std::string& url, std::chrono::milliseconds lease)
    : url_(url), database_(detail::queue_database(url)), lease_(lease), sender_(open_task_queue(url)) {}

void queue_executor::on_connect() {
  // Ends are collected only once there is someone to report them to.
  collector_ = std::jthread([this](std::stop_token st) { collect(st); });
}

queue_executor::~queue_executor() {
  collector_.request_stop();
  collector_ = {};
}

std::shared_ptr<write_attachment> queue_executor::attachment_for(const std::vector<task_request>& starts,
                                                                 std::span<const task_event> ends) {
  std::vector<std::int64_t> acknowledged;
  for (const task_event& e : ends)
    if (e.source != 0) acknowledged.push_back(e.source);
  if (starts.empty() && acknowledged.empty()) return nullptr;
  std::vector<queued_try> tries;
  tries.reserve(starts.size());
  for (const auto& s : starts) tries.push_back(to_queued_try(s));
  push_to_workers(tries, acknowledged);
  // Called on the engine's thread, from the store's apply, before the step hands its starts over
  // and calls `recorded`.
  return detail::queue_with_store(database_, std::move(tries), std::move(acknowledged),
                                  [this](std::set<try_key>&& queued, std::vector<std::int64_t>&& forgotten) {
                                    {
                                      // Told right after the commit: their ends' notices may come
                                      // before the step hands them over.
                                      std::lock_guard lock(mutex_);
                                      mine_.insert(queued.begin(), queued.end());
                                    }
                                    queued_with_store_.merge(queued);
                                    acknowledged_with_store_.insert(forgotten.begin(), forgotten.end());
                                  });
}

void queue_executor::push_to_workers(std::vector<queued_try>& tries, const std::vector<std::int64_t>& ends) {
  // Each end frees a slot on the worker that reported it: a try of the same queue goes to that
  // worker, if it still takes pushes (pg_task_queue.cpp, "Pushes"). In a chain, the next try
  // goes to the worker that ran the last one, without a claim.
  std::vector<end_worker> free;
  {
    std::lock_guard lock(mutex_);
    for (const auto id : ends)
      if (auto it = end_workers_.find(id); it != end_workers_.end()) free.push_back(it->second);
  }
  for (auto& t : tries) {
    if (!t.worker.empty()) continue;  // named by an earlier flush that threw
    const auto slot = std::find_if(free.begin(), free.end(), [&](const end_worker& w) { return w.queue == t.queue; });
    if (slot == free.end()) continue;
    t.worker = std::move(slot->worker);
    free.erase(slot);
  }
}

void queue_executor::submit(task_request request) {
  const task_context& c = request.context;
  if (!queued_with_store_.empty() &&
      queued_with_store_.erase(try_key{c.dag_id, c.run_id, c.task_id, c.map_index, c.try_number}) == 1) {
    return;  // in mine_ since its commit (attachment_for)
  }
  buffer_.push_back(to_queued_try(request));
}

std::vector<bool> queue_executor::lost(const std::vector<recorded_try>& tries, const std::string&, timestamp now) {
  // Read after the engine read the tries: a row seen then is still in flight.
  auto held = sender_->pending_keys();
  for (const auto& t : buffer_) held.emplace(t.dag_id, t.run_id, t.task_id, t.map_index, t.try_number);
  std::vector<bool> out;
  out.reserve(tries.size());
  for (const auto& t : tries) {
    const bool young = t.start_date && now - *t.start_date < lease_;
    out.push_back(!young && !held.contains({t.dag_id, t.run_id, t.task_id, t.map_index, t.try_number}));
  }
  // Tries of this executor's that the queue no longer holds will send it no end (another
  // scheduler recorded them, or a write that failed never queued them): forgotten.
  std::lock_guard lock(mutex_);
  std::erase_if(mine_, [&](const try_key& k) { return !held.contains(k); });
  if (mine_.empty()) idle_.notify_all();
  return out;
}

void queue_executor::flush() {
  // Every start the store queued was submitted by now, unless the step threw between its commit
  // and its hand-over (it hands over what it committed all the same, engine::step): none is left
  // for a later step, whose tries of the same key are other rows.
  queued_with_store_.clear();
  // The step's ends are recorded by now (with the store's write, or below): their workers are
  // forgotten (the store's write may not have queued the step's tries: they go below).
  if (!buffer_.empty()) push_to_workers(buffer_, acknowledged_);
  {
    std::lock_guard lock(mutex_);
    for (const auto id : acknowledged_) end_workers_.erase(id);
    for (const auto id : acknowledged_with_store_) {
      end_workers_.erase(id);
      handed_from_notices_.erase(id);
    }
  }
  acknowledged_with_store_.clear();
  if (buffer_.empty() && acknowledged_.empty()) return;
  // Throws with both intact: the next flush sends them (a try still queued is kept once: ON
  // CONFLICT; one an enqueue that threw in fact queued is not sent again: pg_task_queue settles
  // that first; an end's row is deleted by its id, which no later try reuses).
  {
    // Before they are sent: their ends' notices may come before the enqueue returns. Should it
    // throw, they are sent again (kept in buffer_), or the sweep (lost) forgets them.
    std::lock_guard lock(mutex_);
    for (const auto& t : buffer_) mine_.emplace(t.dag_id, t.run_id, t.task_id, t.map_index, t.try_number);
  }
  sender_->enqueue(buffer_, acknowledged_);
  {
    // Acknowledged durably: no take returns them again, and no crash can undo their completions.
    std::lock_guard lock(mutex_);
    for (const auto id : acknowledged_) handed_from_notices_.erase(id);
  }
  buffer_.clear();
  acknowledged_.clear();
}

void queue_executor::recorded(const std::vector<task_event>& events) noexcept {
  if (events.empty()) return;
  try {
    // Sent with the step's tries (the engine flushes right after): one transaction, not two. By
    // the row the end was read from: a later end of the same key (a sensor's next poke) is another
    // row, which this acknowledgement must not delete.
    // The store's write deleted some with the ends' records already (attachment_for); one row's
    // end may come twice in a pass (taken again), and flush forgets the set.
    for (const auto& e : events)
      if (e.source != 0 && !acknowledged_with_store_.contains(e.source)) acknowledged_.push_back(e.source);
  } catch (const std::exception&) {
    // Out of memory: the rows stay taken; after a lease they are collected again, and the
    // engine, which holds these ends, acknowledges the repeat.
  }
}

void queue_executor::drain() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return mine_.empty(); });
}

void queue_executor::collect(std::stop_token stop) {
  std::unique_ptr<task_queue> q;
  const auto now_steady = [] { return std::chrono::steady_clock::now(); };
  const auto expiry_every = std::min(lease_ / 3, std::chrono::milliseconds(5000));
  auto last_expiry = now_steady();
  // Since when this collector has reached the queue without a break: leases are expired only
  // after a whole lease of it, and a worker's longest pause between attempts to reach the
  // database (it may find the database back that much later). While the database was out of
  // reach for the scheduler it was most likely out of reach for the workers too, and a lease they
  // could not renew says nothing of whether they live.
  bool reachable = false;
  auto reachable_since = now_steady();
  // Ends a worker reported (not leases found lost): their workers may take the next tries.
  const auto note_workers = [this](const std::vector<finished_try>& ends) {
    std::lock_guard lock(mutex_);
    // Forgotten when a step records the end; ends no step records (their DAG does not load) are
    // few, but a bound keeps them from adding up: past it, those ends' next tries are queued.
    if (end_workers_.size() > 100000) end_workers_.clear();
    for (const auto& f : ends)
      if (!f.item.worker.empty()) end_workers_[f.item.id] = {f.item.worker, f.item.queue};
  };
  const auto report_all = [this](const std::vector<finished_try>& ends) {
    for (const auto& f : ends) {
      task_event e;
      e.dag_id = f.item.dag_id;
      e.run_id = f.item.run_id;
      e.task_id = f.item.task_id;
      e.try_number = f.item.try_number;
      e.map_index = f.item.map_index;
      e.result = f.outcome.result;
      e.started = f.outcome.started;
      e.ended = f.outcome.ended;
      e.pid = f.outcome.pid;
      e.instance_start = f.outcome.instance_start;
      e.source = f.item.id;  // what `recorded` acknowledges
      report(std::move(e));
    }
    // Counted as they are reported: an expiry that throws after them must not keep them.
    if (ends.empty()) return;
    std::lock_guard lock(mutex_);
    for (const auto& f : ends) mine_.erase({f.item.dag_id, f.item.run_id, f.item.task_id, f.item.map_index, f.item.try_number});
    if (mine_.empty()) idle_.notify_all();
  };
  // Ends come with their notices (task_queue::noticed_ends): those of tries this executor queued
  // are handed on at once, without a take; a take runs when a notice came without its end, after
  // a full take, and every half second, for the rest (another scheduler's ends among them, which
  // that scheduler has most likely recorded by then: taken at their notice, both would record
  // them, and one of the two writes would lose). An end handed
  // on from its notice is kept (handed_from_notices_) until a take returns it, which skips it and
  // marks it taken: it comes again only once stale, as a taken end does; or until a step's durable
  // commit acknowledges it (flush); one neither taken nor acknowledged is forgotten after a lease.
  constexpr auto take_every = std::chrono::milliseconds(500);
  auto last_take = std::chrono::steady_clock::time_point{};
  bool more = false;
  while (!stop.stop_requested()) {
    const auto began = now_steady();
    try {
      if (!q) {
        q = open_task_queue(url_);
        last_take = {};
      }
      std::vector<finished_try> noticed;
      {
        std::lock_guard lock(mutex_);
        for (auto& f : q->noticed_ends()) {
          // A second notice of an end handed on: a crash of the server undid the first completion
          // and the worker wrote it again (the only way a completion succeeds twice); the engine
          // holds it, and acknowledges it again as a repeat.
          const bool again = handed_from_notices_.contains(f.item.id);
          // Another scheduler's end (or one whose notice beat this executor's commit) is left to
          // the takes, every half second: that scheduler hands it on meanwhile.
          if (!again && !mine_.contains({f.item.dag_id, f.item.run_id, f.item.task_id, f.item.map_index, f.item.try_number}))
            continue;
          handed_from_notices_.insert_or_assign(f.item.id, began);
          noticed.push_back(std::move(f));
        }
      }
      note_workers(noticed);
      report_all(noticed);
      if (more || q->ends_unnoticed() || began - last_take >= take_every) {
        last_take = began;
        {
          std::lock_guard lock(mutex_);
          std::erase_if(handed_from_notices_, [&](const auto& e) { return began - e.second > lease_; });
        }
        // Reported as soon as they are read: the engine's step need not wait for the take's COMMIT.
        more = q->take_finished(1000, lease_, [&](const std::vector<finished_try>& ends) {
                  std::vector<finished_try> fresh;
                  {
                    std::lock_guard lock(mutex_);
                    for (const auto& f : ends)
                      if (handed_from_notices_.erase(f.item.id) == 0) fresh.push_back(f);
                  }
                  note_workers(fresh);  // before the engine may record them
                  report_all(fresh);
                }).size() == 1000;
      }
      // An answer that took half a lease came through retries: the connection broke meanwhile.
      if (!reachable || now_steady() - began > lease_ / 2) reachable_since = now_steady();
      reachable = true;
      if (now_steady() - last_expiry > expiry_every && now_steady() - reachable_since >= lease_ + detail::max_retry_delay) {
        last_expiry = now_steady();
        report_all(q->expire_leases(lease_));
      }
      if (!more) q->wait("finished", take_every, stop);
    } catch (const std::exception&) {
      // The queue's own retries gave up (database down for long): start over with a new
      // connection; ends stay safe in the queue meanwhile.
      q.reset();
      reachable = false;
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      cv.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
    }
  }
}

}  // namespace dag
