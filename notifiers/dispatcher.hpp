#pragma once
/// @file Sending alerts off the scheduler loop: a queue and one thread that runs each notifier
/// (e-mail, webhook, command) in turn. A failing notifier is reported, never thrown back.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <dag/core/alert.hpp>
#include <dag/core/connection.hpp>

namespace dag {

/// A notifier ready to send: its settings and the connection it uses, resolved beforehand on the
/// caller's thread (the store is not the sending thread's to read).
struct notifier_job {
  notifier_spec spec;                 ///< type and settings
  std::optional<connection> target;   ///< the SMTP server or webhook target; none: `DAGRUN_SMTP_*` (e-mail)
  std::string missing;                ///< a connection that was named but is not defined
};

/// Runs notifiers on a thread of its own, in the order posted.
class alert_dispatcher {
public:
  /// Called on the sending thread after each notifier: `error` is empty when it succeeded.
  using outcome_sink = std::function<void(const notifier_spec& n, const alert& a, const std::string& error)>;

  /// Starts the sending thread; `on_outcome` may be empty.
  explicit alert_dispatcher(outcome_sink on_outcome = {});
  /// Sends what is still queued (each notifier is bounded by its own timeout), then stops.
  ~alert_dispatcher();
  alert_dispatcher(const alert_dispatcher&) = delete;
  alert_dispatcher& operator=(const alert_dispatcher&) = delete;

  /// Queues `a` for each of `jobs`; returns at once.
  void post(alert a, std::vector<notifier_job> jobs);
  /// Blocks until everything posted so far has been sent (or has failed).
  void wait_idle();

  /// `spec` with its connection looked up through `lookup`: a webhook's `url` or `conn_id`, an
  /// e-mail's `conn_id`, else the connection `smtp_default` when defined (as Airflow's
  /// `email_conn_id`), else none (the environment's `DAGRUN_SMTP_*`).
  static notifier_job resolve(const notifier_spec& spec, const std::function<std::optional<connection>(std::string_view)>& lookup);
  /// Sends one notifier now, on this thread. Throws dag::error saying why it failed.
  static void send(const notifier_job& job, const alert& a);

private:
  void work(std::stop_token stop);

  outcome_sink on_outcome_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::condition_variable idle_;
  std::deque<std::pair<alert, std::vector<notifier_job>>> queue_;
  bool busy_ = false;
  std::jthread thread_;  // last: started once the members above exist
};

}  // namespace dag
