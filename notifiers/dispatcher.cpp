// The alert queue and its sending thread (see dispatcher.hpp).
#include <dag/notifiers/dispatcher.hpp>

#include <dag/core/error.hpp>
#include <dag/notifiers/command.hpp>
#include <dag/notifiers/email.hpp>
#include <dag/notifiers/webhook.hpp>

namespace dag {

alert_dispatcher::alert_dispatcher(outcome_sink on_outcome)
    : on_outcome_(std::move(on_outcome)), thread_([this](std::stop_token stop) { work(stop); }) {}

alert_dispatcher::~alert_dispatcher() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void alert_dispatcher::post(alert a, std::vector<notifier_job> jobs) {
  if (jobs.empty()) return;
  {
    std::lock_guard lock(mutex_);
    queue_.emplace_back(std::move(a), std::move(jobs));
  }
  wake_.notify_one();
}

void alert_dispatcher::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

void alert_dispatcher::work(std::stop_token stop) {
  for (;;) {
    std::pair<alert, std::vector<notifier_job>> next;
    {
      std::unique_lock lock(mutex_);
      // A stop request still lets the queue empty first: alerts already posted are sent.
      wake_.wait(lock, stop, [&] { return !queue_.empty(); });
      if (queue_.empty()) {
        idle_.notify_all();
        return;
      }
      next = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    for (const auto& job : next.second) {
      std::string why;
      try {
        send(job, next.first);
      } catch (const std::exception& e) {
        why = e.what();
        if (why.empty()) why = "failed";
      }
      if (on_outcome_) on_outcome_(job.spec, next.first, why);
    }
    {
      std::lock_guard lock(mutex_);
      busy_ = false;
      if (queue_.empty()) idle_.notify_all();
    }
  }
}

notifier_job alert_dispatcher::resolve(const notifier_spec& spec,
                                       const std::function<std::optional<connection>(std::string_view)>& lookup) {
  notifier_job job{spec, std::nullopt, {}};
  const auto setting = [&](const char* name) {
    const auto it = spec.settings.find(name);
    return it == spec.settings.end() ? std::string() : it->second;
  };
  if (spec.type == "webhook" && !setting("url").empty()) {
    job.target = parse_connection_uri("webhook", setting("url"));
  } else if (const std::string id = setting("conn_id"); !id.empty()) {
    job.target = lookup ? lookup(id) : std::nullopt;
    if (!job.target) job.missing = id;
  } else if (spec.type == "email" && lookup) {
    job.target = lookup("smtp_default");
  }
  return job;
}

void alert_dispatcher::send(const notifier_job& job, const alert& a) {
  if (!job.missing.empty()) throw error("connection '" + job.missing + "' is not defined");
  const auto setting = [&](const char* name) {
    const auto it = job.spec.settings.find(name);
    return it == job.spec.settings.end() ? std::string() : it->second;
  };
  if (job.spec.type == "email") {
    std::vector<std::string> to;
    const std::string list = setting("to");
    for (std::size_t start = 0; start < list.size();) {
      const std::size_t end = std::min(list.find(',', start), list.size());
      std::string one = list.substr(start, end - start);
      one.erase(0, one.find_first_not_of(' '));
      one.erase(one.find_last_not_of(' ') + 1);
      if (!one.empty()) to.push_back(one);
      start = end + 1;
    }
    const auto smtp = job.target ? notifiers::smtp_settings::from_connection(*job.target) : notifiers::smtp_settings::from_environment();
    notifiers::send_email(smtp, notifiers::alert_email(a, std::move(to), setting("subject")));
  } else if (job.spec.type == "webhook") {
    if (!job.target) throw error("webhook: set url or conn_id");
    notifiers::send_webhook(*job.target, setting("endpoint"), a);
  } else if (job.spec.type == "command") {
    notifiers::run_command(setting("command"), a);
  } else {
    throw error("unknown notifier type '" + job.spec.type + "'");
  }
}

}  // namespace dag
