// `dagrun worker`: claims tries from the PostgreSQL queue, runs them, reports them.
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <ostream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <dag/core/environment.hpp>
#include <dag/core/json_text.hpp>
#include <dag/engine/try_context.hpp>
#include <dag/exec/local_executor.hpp>
#include <dag/exec/orphan_processes.hpp>
#include <dag/exec/queue_executor.hpp>

#include "session.hpp"

namespace po = boost::program_options;

namespace dagrun {
namespace {

std::vector<std::string> split_queues(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string q; std::getline(in, q, ',');) {
    if (q.empty()) continue;
    if (!dag::is_utf8_text(q)) throw dag::usage_error("--queues: queue names must be UTF-8 text");
    out.push_back(q);
  }
  if (out.empty()) throw dag::usage_error("--queues: give at least one queue name");
  return out;
}

std::string key_of(const std::string& d, const std::string& r, const std::string& t, int m, int n) {
  return d + '\0' + r + '\0' + t + '\0' + std::to_string(m) + '\0' + std::to_string(n);
}

// What the worker holds for one claimed try.
struct claimed {
  std::int64_t id;
  std::string token;
};

class worker {
public:
  worker(const invocation& inv, std::vector<std::string> queues, int concurrency, std::chrono::milliseconds lease)
      : inv_(inv), queues_(std::move(queues)), concurrency_(concurrency), lease_(lease) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    hostname_ = host;
    // Unique to this process: tries are pushed to a worker by its name (task_queue::accept_pushes),
    // and containers on one host's network may share its name and their pids.
    std::random_device random;
    name_ = hostname_ + ":" + std::to_string(::getpid()) + ":" + fmt::format("{:08x}", random());
  }

  int run(std::stop_token stop, std::chrono::seconds grace) {
    // C++ DAGs' callables run here too, so the worker loads the same DAGs as the scheduler.
    folder_ = load_dags(inv_, true);
    auto claimer = dag::open_task_queue(inv_.global.db);
    dag::local_executor pool(concurrency_);
    pool.connect([this](dag::task_event e) { finished(std::move(e)); },
                 [] { return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()); });
    std::jthread reporter([this](std::stop_token st) { report(st); });
    spdlog::info("worker {} serving queues {} with {} slots", name_, fmt_list(queues_), concurrency_);

    // How many tries one claim asks for (never more than the free slots): it doubles while
    // claims come back full (a backlog: one statement, one commit for many tries) and falls to
    // what the last claim found when the queue runs dry, so that workers share a trickle of
    // tries instead of the first one taking them all.
    int batch = 1;
    // Tries pushed to this worker (the next try of a chain whose last try it ran: pg_task_queue.cpp,
    // "Pushes") come claimed already, and start first. The queue is asked when a claim came back
    // full, a try was queued for anyone, or a second passed without a notice: not after a push's
    // notice alone, which says nothing of the queue.
    bool taking_pushes = false;
    bool look_in_queue = true;
    auto last_claim = std::chrono::steady_clock::time_point{};
    while (!stop.stop_requested()) {
      const int free = concurrency_ - busy();
      if (free <= 0) {
        // A try pushed to it meanwhile (it claimed another into the slot its last end freed) would
        // wait for a slot: it goes back to the queue, for another worker.
        try {
          if (taking_pushes) claimer->put_back_pushes();
        } catch (const dag::error& e) {
          spdlog::error("worker {}: cannot put back the tries pushed to it: {}; retrying", name_, e.what());
        }
        std::unique_lock lock(mutex_);
        slot_freed_.wait_for(lock, stop, std::chrono::seconds(1), [&] { return busy_ < concurrency_; });
        continue;
      }
      try {
        if (!taking_pushes) {
          claimer->accept_pushes(name_);
          taking_pushes = true;
        }
        const auto pushed = claimer->pushed(free);
        for (const auto& item : pushed)
          if (auto req = request_for(item)) pool.submit(std::move(*req));
        pool.flush();
        const int left = free - static_cast<int>(pushed.size());
        if (left > 0 && look_in_queue) {
          last_claim = std::chrono::steady_clock::now();
          const int want = std::min(left, batch);
          auto items = claimer->claim(queues_, want, name_);
          for (auto& item : items)
            if (auto req = request_for(item)) pool.submit(std::move(*req));
          pool.flush();
          const int found = static_cast<int>(items.size());
          batch = found == want ? std::min(concurrency_, 2 * batch) : std::max({1, found, batch / 2});
          look_in_queue = found == want;
        }
        if (left > 0 && !look_in_queue && !claimer->pushes_waiting()) {
          const bool queued = claimer->wait("queued", std::chrono::milliseconds(1000), stop);
          // At least once a second: a notice may have gone with a session that broke.
          look_in_queue = queued || !claimer->pushes_waiting() ||
                          std::chrono::steady_clock::now() - last_claim >= std::chrono::seconds(1);
        }
      } catch (const dag::error& e) {
        // The queue's retries gave up (a long outage). Running tries go on and their results wait
        // in the reporter; claiming starts again once the database is back.
        spdlog::error("worker {}: cannot claim tries: {}; retrying", name_, e.what());
        look_in_queue = true;
        std::unique_lock lock(mutex_);
        slot_freed_.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
      }
    }
    // Pushed to no more: a try pushed and not started goes back to the queue, for another worker,
    // now rather than when its lease runs out.
    try {
      if (taking_pushes)
        if (const int back = claimer->refuse_pushes({}); back > 0)
          spdlog::info("worker {}: put back {} tries pushed to it that it had not started", name_, back);
    } catch (const std::exception& e) {
      spdlog::warn("worker {}: cannot put back the tries pushed to it ({}); they are lost when their leases run out",
                   name_, e.what());
    }
    spdlog::info("worker {}: stopping; waiting up to {}s for {} running tries", name_, grace.count(), busy());
    {
      std::unique_lock lock(mutex_);
      slot_freed_.wait_for(lock, grace, [&] { return busy_ == 0; });
    }
    if (busy() > 0) {
      pool.cancel_all();
      pool.drain();
    }
    {
      std::unique_lock lock(mutex_);
      slot_freed_.wait(lock, [&] { return results_.empty() && busy_ == 0; });  // the reporter sent them
    }
    reporter.request_stop();
    {
      // Woken now, not at its next heartbeat: it confirms what it sent and ends.
      std::lock_guard lock(mutex_);
      results_ready_.notify_all();
    }
    reporter.join();
    spdlog::info("worker {} stopped", name_);
    return exit_ok;
  }

private:
  static std::string fmt_list(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  }
  int busy() {
    std::lock_guard lock(mutex_);
    return busy_;
  }

  /// The request that runs a claimed try, or none when this worker already runs that try. The
  /// queue hands a key out once per claim, and a claim whose commit was in doubt is settled by
  /// what it wrote (pg_connection.hpp), so this is a defence: should a claim still be reported
  /// committed when it was not, or a row be put back by hand, the try is claimed again, and the
  /// running try keeps running, once, and answers under the newer lease.
  std::optional<dag::task_request> request_for(const dag::queued_try& item) {
    const std::string key = key_of(item.dag_id, item.run_id, item.task_id, item.map_index, item.try_number);
    bool running = false;
    {
      std::lock_guard lock(mutex_);
      if (const auto held = claims_.find(key); held != claims_.end()) {
        held->second = {item.id, item.lease_token};
        running = true;
      }
    }
    if (running) {  // told outside the lock: a log write can block, and ending tries and the reporter take it
      spdlog::warn("worker {}: claimed {} {} {} (map index {}) try {} again while running it; it runs once, under the "
                   "new lease", name_, item.dag_id, item.run_id, item.task_id, item.map_index, item.try_number);
      return std::nullopt;
    }
    dag::task_request req;
    std::shared_ptr<dag::task> own = std::make_shared<dag::task>();
    own->id = item.task_id;
    own->operator_name = item.operator_name;
    if (const auto* d = folder_.find(item.dag_id))
      if (const auto* t = d->find(item.task_id)) *own = *t;  // callables need their C++ body
    req.definition = own.get();
    req.keep_alive = own;
    req.op = inv_.operators.find(item.operator_name);
    // The scheduler built the context; this process owns the try now, and resolves its connection
    // from its own environment (whose password is a secret too).
    req.context = dag::to_task_context(item);
    dag::finish_try_context(req.context, dag::connection_from_environment);
    std::lock_guard lock(mutex_);
    claims_[key] = {item.id, item.lease_token};
    ++busy_;
    return req;
  }

  void finished(dag::task_event e) {
    std::lock_guard lock(mutex_);
    auto it = claims_.find(key_of(e.dag_id, e.run_id, e.task_id, e.map_index, e.try_number));
    if (it == claims_.end()) return;
    dag::queued_result r;
    r.id = it->second.id;
    r.lease_token = it->second.token;
    r.result = std::move(e.result);
    r.started = e.started;
    r.ended = e.ended;
    r.pid = e.pid;
    r.hostname = hostname_;
    r.instance_start = e.instance_start;
    claims_.erase(it);
    results_.push_back(std::move(r));
    --busy_;
    results_ready_.notify_one();
    slot_freed_.notify_all();
  }

  // Sends results in batches and renews the leases of running tries, on its own connection.
  // Results are committed without waiting for the disk (task_queue::complete); the queue keeps
  // them until a durable commit confirms them, which this asks for once the oldest has waited
  // `confirm_after` (by then the server's WAL writer has most likely flushed them, so the
  // confirmation's flush is short and off every try's path), when many wait, and before it stops.
  void report(std::stop_token stop) {
    std::unique_ptr<dag::task_queue> q;  // opened (again) inside the loop, where failures are retried
    auto last_beat = std::chrono::steady_clock::now();
    auto last_orphan_scan = std::chrono::steady_clock::time_point{};  // scan at once on start
    const auto beat_every = std::max(lease_ / 3, std::chrono::milliseconds(100));
    constexpr auto confirm_after = std::chrono::milliseconds(200);
    constexpr std::size_t confirm_at_most = 10000;  // results held unconfirmed
    auto unconfirmed_since = std::chrono::steady_clock::time_point{};  // the oldest result q holds unconfirmed
    const auto unconfirmed = [&] { return q && q->unflushed() > 0; };
    while (true) {
      std::vector<dag::queued_result> batch;
      std::vector<std::string> tokens;
      bool stopping = false;
      {
        std::unique_lock lock(mutex_);
        const auto wake = unconfirmed() ? std::min(beat_every, std::chrono::ceil<std::chrono::milliseconds>(
                                                                 unconfirmed_since + confirm_after -
                                                                 std::chrono::steady_clock::now()))
                                      : beat_every;
        results_ready_.wait_for(lock, std::max(wake, std::chrono::milliseconds(0)),
                                [&] { return !results_.empty() || stop.stop_requested(); });
        stopping = results_.empty() && stop.stop_requested();
        if (stopping && !unconfirmed()) return;
        batch.assign(std::make_move_iterator(results_.begin()), std::make_move_iterator(results_.end()));
        results_.clear();
        // A finished try's lease is renewed too until its result is in: after an outage the
        // result may wait for the database longer than a lease.
        if (std::chrono::steady_clock::now() - last_beat >= beat_every) {
          for (const auto& [key, c] : claims_) tokens.push_back(c.token);
          for (const auto& r : batch) tokens.push_back(r.lease_token);
        }
      }
      if (std::chrono::steady_clock::now() - last_orphan_scan >= lease_) {
        last_orphan_scan = std::chrono::steady_clock::now();
        // Their tries were re-queued when the dead worker's lease ran out: these must not run on.
        if (const auto ended = dag::end_orphans_of_dead_workers())
          spdlog::warn("worker {}: ended {} process groups left running by a dead worker on this machine", name_, ended);
      }
      try {
        if (!q) q = dag::open_task_queue(inv_.global.db);
        // Renewed first: after an outage the leases are the ones close to running out.
        if (!tokens.empty() || std::chrono::steady_clock::now() - last_beat >= beat_every) {
          for (const auto& t : q->heartbeat(tokens)) spdlog::warn("lease {} was lost", t);
          last_beat = std::chrono::steady_clock::now();
        }
        if (!batch.empty()) {
          // Sent until the queue answers: a result whose COMMIT was in doubt is settled by the
          // connection layer, and one sent again finds its lease token spent and changes nothing.
          const bool first = !unconfirmed();
          auto accepted = q->complete(batch);
          if (first) unconfirmed_since = std::chrono::steady_clock::now();  // once they are sent
          for (std::size_t i = 0; i < batch.size(); ++i)
            if (!accepted[i])
              spdlog::warn("result of queue item {} refused: its lease was lost (the scheduler re-queued it)", batch[i].id);
          batch.clear();  // sent: the queue keeps them until they are durable (not put back below)
        }
        if (unconfirmed() && (stopping || q->unflushed() >= confirm_at_most ||
                              std::chrono::steady_clock::now() - unconfirmed_since >= confirm_after))
          q->confirm();
      } catch (const std::exception& ex) {
        spdlog::error("worker {}: cannot reach the queue: {}; retrying", name_, ex.what());
        std::unique_lock lock(mutex_);
        results_.insert(results_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
        results_ready_.wait_for(lock, std::chrono::seconds(1), [] { return false; });  // then try again
      }
      std::lock_guard lock(mutex_);
      slot_freed_.notify_all();
    }
  }

  const invocation& inv_;
  std::vector<std::string> queues_;
  int concurrency_;
  std::chrono::milliseconds lease_;
  std::string hostname_;
  std::string name_;
  dag::dag_folder folder_;
  std::mutex mutex_;
  std::condition_variable_any slot_freed_;
  std::condition_variable results_ready_;
  std::map<std::string, claimed> claims_;
  std::deque<dag::queued_result> results_;
  int busy_ = 0;
};

int worker_command(invocation& inv) {
  if (!inv.global.db.starts_with("postgres"))
    throw dag::usage_error("--db: a worker needs the PostgreSQL queue (postgresql://…), got a non-PostgreSQL database");
  const int concurrency = inv.args.count("concurrency") ? bounded_flag(inv, "concurrency", 1, max_threads) : default_worker_concurrency();
  const auto lease = std::chrono::milliseconds(bounded_flag(inv, "lease-ms", min_lease_ms, max_lease_ms));
  const auto grace = std::chrono::seconds(bounded_flag(inv, "grace", 0, max_grace_seconds));
  stop_on_signals signals;
  worker w(inv, split_queues(inv.args["queues"].as<std::string>()), concurrency, lease);
  return w.run(signals.token(), grace);
}

}  // namespace

void add_worker_commands(std::vector<command>& out) {
  out.push_back({{"worker"},
                 "worker [--queues a,b] [--concurrency N] [--lease-ms MS] [--grace S]",
                 "a queue worker: claims tries from PostgreSQL (--db postgresql://…) and runs them; SIGTERM drains",
                 [](po::options_description& d, po::positional_options_description&) {
                   d.add_options()("queues", po::value<std::string>()->default_value("default")->value_name("a,b"),
                                   "queues to serve (a task's `queue`, default `default`)")(
                       "concurrency", po::value<int>()->value_name("N"),
                       ("tries at once (default " + std::to_string(default_worker_concurrency()) + ": " +
                        std::to_string(worker_slots_per_cpu) + " per CPU, at least 16)").c_str())(
                       "lease-ms", po::value<int>()->default_value(30000)->value_name("MS"),
                       "the scheduler's lease: heartbeats go every third of it")(
                       "grace", po::value<int>()->default_value(30)->value_name("SECONDS"),
                       "on SIGTERM, how long running tries may finish before they are stopped");
                 },
                 worker_command});
}

}  // namespace dagrun
