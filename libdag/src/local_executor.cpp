// The local executor: a pool of threads sized from the machine, growing while tries block; each
// try runs its operator and reports its end.
#include <dag/exec/local_executor.hpp>

#include <dag/core/error.hpp>
#include <dag/core/secret_mask.hpp>

#include <algorithm>
#include <fstream>
#include <optional>
#include <thread>
#include <system_error>
#include <utility>

#include <unistd.h>

#include "end_spool.hpp"
#include "spin_wait.hpp"

namespace dag {

local_executor::local_executor(int max_threads, end_spool_options spool) : max_threads_(max_threads) {
  if (max_threads < 1) throw usage_error("a local executor needs at least 1 thread");
  if (!spool.folder.empty()) spool_ = std::make_unique<detail::end_spool>(std::move(spool));
  const int cpus = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  threads_.reserve(static_cast<std::size_t>(max_threads));
  {
    std::lock_guard lock(mutex_);
    for (int i = 0; i < std::min(cpus, max_threads); ++i) add_thread();
  }
  if (max_threads > live_) watcher_ = std::jthread([this](std::stop_token st) { watch(st); });
}

local_executor::~local_executor() {
  cancel_all();
  if (watcher_.joinable()) {  // first: no thread is added while the pool stops
    watcher_.request_stop();
    watcher_.join();
  }
  for (auto& t : threads_) t.request_stop();
  wake_.notify_all();
  threads_.clear();  // joins
}

void local_executor::add_thread() {
  threads_.emplace_back([this](std::stop_token st) { work(st); });
  ++live_;
}

int local_executor::threads() {
  std::lock_guard lock(mutex_);
  return live_;
}

void local_executor::watch(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (live_ < max_threads_) {
    if (!watch_.wait(lock, stop, [&] { return watching_; })) return;
    // Give the busy threads `grow_after` to come back: in-process tries take microseconds.
    watch_.wait_for(lock, stop, grow_after, [] { return false; });
    if (stop.stop_requested()) return;
    const auto waited_since = std::chrono::steady_clock::now() - grow_after;
    std::size_t waited = 0;  // the queue is in order of arrival: the long waiters are in front
    for (const auto& q : queue_) {
      if (q.since > waited_since) break;
      ++waited;
    }
    std::size_t held = 0;  // threads a try has held as long: blocked, most likely
    for (const auto& [key, r] : running_)
      if (r.since <= waited_since) ++held;
    const auto idle = static_cast<std::size_t>(std::max(0, live_ - busy_));
    const std::size_t more = idle >= waited ? 0 : std::min(waited - idle, held);
    try {
      for (std::size_t i = 0; i < more && live_ < max_threads_; ++i) add_thread();
    } catch (const std::system_error&) {
      // No thread to be had (a pids limit, most likely, at the moment tries use the most): the
      // pool keeps the threads it has rather than terminate the program with every try in it.
      max_threads_ = live_;
    }
    watching_ = starved();
  }
}

void local_executor::submit(task_request request) {
  std::lock_guard lock(mutex_);
  queue_.push_back({std::move(request), std::chrono::steady_clock::now()});
  queued_.store(queue_.size(), std::memory_order_release);
  ++unannounced_;
}

void local_executor::flush() {
  // One wake-up per new try, after the whole step's tries are queued: threads that wake find
  // work instead of contending for the lock while the engine is still adding to the queue. A
  // thread watching for work (work(), below) takes one try without a wake-up, and only sleeping
  // threads are woken: each wake-up is a system call and a context switch.
  std::size_t n = 0;
  std::size_t sleeping = 0;
  {
    std::lock_guard lock(mutex_);
    n = std::exchange(unannounced_, 0);
    // The watching thread takes one try, whichever flush queued it: counted once per watch.
    if (spinning_ && !spinner_counted_ && n > 0) {
      --n;
      spinner_counted_ = true;
    }
    sleeping = static_cast<std::size_t>(sleeping_);
    // Every thread is held by a try (a blocking one, most likely): the watcher times the new ones.
    if (!watching_ && live_ < max_threads_ && starved()) {
      watching_ = true;
      watch_.notify_one();
    }
  }
  if (n == 0 || sleeping == 0) return;
  if (n >= sleeping) wake_.notify_all();
  else
    for (std::size_t i = 0; i < n; ++i) wake_.notify_one();
}

void local_executor::cancel_all() {
  // Tries still queued end now, unstarted: taken after the stop below, each would get the fresh
  // source and run to its end, which a drain (the engine's shutdown) would then wait for.
  std::deque<queued_try> unstarted;
  {
    std::lock_guard lock(mutex_);
    cancel_.request_stop();
    // Later tries get a fresh source: cancelling is for what is handed over now.
    cancel_ = std::stop_source();
    unstarted.swap(queue_);
    queued_.store(0, std::memory_order_release);
    reporting_ += unstarted.size();
  }
  report_unstarted(unstarted);
}

void local_executor::report_unstarted(const std::deque<queued_try>& tries) {
  // Counted in reporting_ by the caller when it took them off the queue, and until reported: a
  // drain waits for their ends too.
  struct done {
    local_executor& ex;
    std::size_t n;
    ~done() {
      std::lock_guard lock(ex.mutex_);
      ex.reporting_ -= n;
      if (ex.queue_.empty() && ex.busy_ == 0 && ex.reporting_ == 0) ex.idle_.notify_all();
    }
  } when_done{*this, tries.size()};
  for (const auto& q : tries) {
    task_event e = event_of(q.request.context);
    e.started = e.ended = now();
    e.result = operator_result::failed("cancelled before it started");
    report(std::move(e));
  }
}

namespace {
// A try as one text, to find it among the running ones.
std::string try_text(const std::string& dag_id, const std::string& run_id, const std::string& task_id, int map_index,
                     int try_number) {
  return dag_id + '\n' + run_id + '\n' + task_id + '\n' + std::to_string(map_index) + '\n' + std::to_string(try_number);
}
}  // namespace

void local_executor::cancel(const try_id& which) {
  std::deque<queued_try> unstarted;  // the try `which` names, when it has not started
  {
    std::lock_guard lock(mutex_);
    if (auto it = running_.find(try_text(which.dag_id, which.run_id, which.task_id, which.map_index, which.try_number)); it != running_.end()) {
      it->second.stop.request_stop();
      return;
    }
    const auto queued = std::find_if(queue_.begin(), queue_.end(), [&](const queued_try& q) {
      const task_request& r = q.request;
      return r.context.dag_id == which.dag_id && r.context.run_id == which.run_id && r.context.task_id == which.task_id &&
             r.context.map_index == which.map_index && r.context.try_number == which.try_number;
    });
    if (queued == queue_.end()) return;
    unstarted.push_back(std::move(*queued));
    queue_.erase(queued);
    queued_.store(queue_.size(), std::memory_order_release);
    ++reporting_;
  }
  report_unstarted(unstarted);
}

void local_executor::on_connect() {
  // Ends a previous process could not record: reported first, so that the engine records them
  // before it judges any try lost (a repeat, or an end of a try settled meanwhile, is refused by
  // its try number, and then forgotten here).
  if (!spool_) return;
  std::vector<task_event> left;
  {
    std::lock_guard lock(spool_mutex_);
    left = spool_->load();
  }
  for (auto& e : left) report(std::move(e));
}

std::string local_executor::hold(const std::vector<task_event>& events) noexcept {
  if (!spool_) return {};
  outage_ = true;
  try {
    std::lock_guard lock(spool_mutex_);
    std::string problem;
    for (const auto& e : events)
      if (!spool_->keep(e) && problem.empty()) problem = spool_->problem();
    return problem;
  } catch (const std::exception& ex) {
    return std::string("cannot spool unrecorded ends: ") + ex.what();
  }
}

void local_executor::recorded(const std::vector<task_event>& events) noexcept {
  if (!spool_) return;
  outage_ = false;  // a pass was written
  try {
    std::lock_guard lock(spool_mutex_);
    if (spool_->size() == 0) return;
    for (const auto& e : events) spool_->forget(e);
  } catch (const std::exception&) {
    // A file left behind is replayed on the next start, refused as a repeat, and removed then.
  }
}

void local_executor::spool_now(const task_event& e) noexcept {
  try {
    std::lock_guard lock(spool_mutex_);
    spool_->keep(e);  // when full, the engine's next `hold` of it says so
  } catch (const std::exception&) {
    // Held in memory by the engine, as without a spool.
  }
}

void local_executor::drain() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return queue_.empty() && busy_ == 0 && reporting_ == 0; });
}

void local_executor::work(std::stop_token pool_stop) {
  // Whether this thread watches for its next try: after a try that was over within a watch (an
  // in-process callable, where a hand-off's wake-up costs as much as the try), or after the last
  // try in flight (a chain of processes: nothing else wants the CPU while the engine records the
  // end and hands over the next one). While other tries run — processes, most likely — the CPU a
  // watch takes is better left to them.
  bool watch_next = false;
  for (;;) {
    task_request request;
    std::stop_token cancel;
    std::stop_source own;  // this try's stop: cancel() asks it, and so does cancel_all (below)
    std::string key;
    {
      std::unique_lock lock(mutex_);
      if (queue_.empty() && !spinning_ && watch_next) {
        // Out of work: watch for the next try a little while before sleeping (spin_wait.hpp).
        // Whatever a flush counted on this thread for is in the queue when it looks again below,
        // under the lock, whether it saw it while watching or not.
        spinning_ = true;
        spinner_counted_ = false;
        lock.unlock();
        detail::spin_until([&] { return queued_.load(std::memory_order_acquire) > 0 || pool_stop.stop_requested(); });
        lock.lock();
        spinning_ = false;
      }
      if (queue_.empty()) {
        ++sleeping_;
        const bool woken = wake_.wait(lock, pool_stop, [&] { return !queue_.empty(); });
        --sleeping_;
        if (!woken) return;
      }
      request = std::move(queue_.front().request);
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_release);
      cancel = cancel_.get_token();
      const task_context& c = request.context;
      key = try_text(c.dag_id, c.run_id, c.task_id, c.map_index, c.try_number);
      running_[key] = {own, std::chrono::steady_clock::now()};
      ++busy_;
      // Every thread busy and tries left waiting: the watcher times them (once, not per try).
      if (!watching_ && live_ < max_threads_ && starved()) {
        watching_ = true;
        watch_.notify_one();
      }
    }
    const std::stop_callback on_cancel_all(cancel, [&own] { own.request_stop(); });
    request.context.stop = own.get_token();
    // The log file is made on the first line: most in-process tries log nothing, and a directory
    // and a file per try would cost more than the try. Processes create their own (child_process).
    std::ofstream log;
    const std::filesystem::path& log_path = request.context.log_path;
    request.context.log = [&log, &log_path](std::string_view line) {
      if (!log.is_open()) {
        std::error_code ec;
        std::filesystem::create_directories(log_path.parent_path(), ec);
        log.open(log_path, std::ios::app);
      }
      log << line << '\n' << std::flush;
    };
    const auto began = std::chrono::steady_clock::now();
    task_event ended = run_try(request, [this] { return now(); });
    const bool short_try = std::chrono::steady_clock::now() - began < detail::spin_before_sleep;
    {
      std::lock_guard lock(mutex_);
      running_.erase(key);
    }
    // The store is failing: on disk before it is reported, so a stop or a crash meanwhile keeps it.
    if (spool_ && outage_) spool_now(ended);
    report(std::move(ended));
    {
      std::lock_guard lock(mutex_);
      --busy_;
      if (queue_.empty() && busy_ == 0) idle_.notify_all();
      watch_next = short_try || busy_ == 0;
    }
  }
}

task_event run_try(task_request& request, const std::function<timestamp()>& now) {
  task_context& ctx = request.context;
  task_event e = event_of(ctx);
  e.started = now();
  // Every line passes the mask on its way to the sink the caller gave.
  ctx.log = [sink = std::move(ctx.log), &ctx](std::string_view line) {
    if (sink) sink(mask_secrets(line, ctx.secrets));
  };

  if (auto it = ctx.fields.find(std::string(render_error_field)); it != ctx.fields.end()) {
    e.result = operator_result::failed("template error: " + it->second);
    ctx.log(e.result.message);
  } else if (!request.op || !request.op->run || !request.definition) {
    const std::string name = request.definition ? request.definition->operator_name : "?";
    e.result = operator_result::failed("operator '" + name + "' cannot run in this build yet");
    ctx.log(e.result.message);
  } else {
    // Operator failures are values; an exception escaping one is a failed try with its message.
    try {
      e.result = request.op->run(*request.definition, ctx);
    } catch (const std::exception& ex) {
      e.result = operator_result::failed(std::string("exception: ") + ex.what());
      ctx.log(e.result.message);
    } catch (...) {
      e.result = operator_result::failed("exception of unknown type");
      ctx.log(e.result.message);
    }
  }
  // A message may quote what failed (a query, a connection error): it is logged and stored.
  e.result.message = mask_secrets(e.result.message, ctx.secrets);
  e.ended = now();
  // In-process operators cannot be preempted: one that overran its timeout still fails.
  if (ctx.timeout && e.result.outcome == try_outcome::success && e.ended - e.started > *ctx.timeout) {
    e.result = operator_result::failed("execution_timeout exceeded");
    ctx.log(e.result.message);
  }
  return e;
}

}  // namespace dag
