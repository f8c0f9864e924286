// The scheduler's side of the queue.
#include <dag/exec/queue_executor.hpp>

namespace dag {

queued_try to_queued_try(const task_request& request) {
  const task_context& c = request.context;
  queued_try t;
  t.dag_id = c.dag_id;
  t.run_id = c.run_id;
  t.task_id = c.task_id;
  t.try_number = c.try_number;
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
  c.fields = item.fields;
  c.environment = item.environment;
  c.params = item.params;
  c.log_path = item.log_path;
  if (item.timeout_ms) c.timeout = std::chrono::milliseconds(*item.timeout_ms);
  c.waited = std::chrono::microseconds(item.waited_us);
  c.secrets = item.secrets;
  c.logical_date = item.logical_date;
  c.data_interval_start = item.data_interval_start;
  c.data_interval_end = item.data_interval_end;
  return c;
}

queue_executor::queue_executor(const std::string& url, std::chrono::milliseconds lease)
    : url_(url), lease_(lease), sender_(open_task_queue(url)) {}

void queue_executor::on_connect() {
  // Ends are collected only once there is someone to report them to.
  collector_ = std::jthread([this](std::stop_token st) { collect(st); });
}

queue_executor::~queue_executor() {
  collector_.request_stop();
  collector_ = {};
}

void queue_executor::submit(task_request request) { buffer_.push_back(to_queued_try(request)); }

std::vector<bool> queue_executor::lost(const std::vector<recorded_try>& tries, const std::string&, timestamp now) {
  // Read after the engine read the tries: a row seen then is still in flight.
  const auto held = sender_->pending_keys();
  std::vector<bool> out;
  out.reserve(tries.size());
  for (const auto& t : tries) {
    const bool young = t.start_date && now - *t.start_date < lease_;
    out.push_back(!young && !held.contains({t.dag_id, t.run_id, t.task_id, t.try_number}));
  }
  return out;
}

void queue_executor::flush() {
  if (buffer_.empty()) return;
  sender_->enqueue(buffer_);
  {
    std::lock_guard lock(mutex_);
    outstanding_ += static_cast<long long>(buffer_.size());
  }
  buffer_.clear();
}

void queue_executor::drain() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return outstanding_ <= 0; });
}

void queue_executor::collect(std::stop_token stop) {
  std::unique_ptr<task_queue> q;
  auto last_expiry = std::chrono::steady_clock::now();
  while (!stop.stop_requested()) {
    try {
      if (!q) q = open_task_queue(url_);
      std::vector<finished_try> done = q->take_finished(1000);
      if (std::chrono::steady_clock::now() - last_expiry > std::min(lease_ / 3, std::chrono::milliseconds(5000))) {
        last_expiry = std::chrono::steady_clock::now();
        auto lost = q->expire_leases(lease_);
        const timestamp at = now();
        for (auto& l : lost) {
          l.outcome.started = at;
          l.outcome.ended = at;
          done.push_back(std::move(l));
        }
      }
      for (auto& f : done) {
        task_event e;
        e.dag_id = f.item.dag_id;
        e.run_id = f.item.run_id;
        e.task_id = f.item.task_id;
        e.try_number = f.item.try_number;
        e.result = f.outcome.result;
        e.started = f.outcome.started;
        e.ended = f.outcome.ended;
        e.pid = f.outcome.pid;
        report(std::move(e));
      }
      if (!done.empty()) {
        std::lock_guard lock(mutex_);
        outstanding_ -= static_cast<long long>(done.size());
        if (outstanding_ <= 0) idle_.notify_all();
      }
      if (done.size() < 1000) q->wait("finished", std::chrono::milliseconds(500));
    } catch (const std::exception&) {
      // The queue's own retries gave up (database down for long): start over with a new
      // connection; tries stay safe in the queue meanwhile.
      q.reset();
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      cv.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
    }
  }
}

}  // namespace dag
