#pragma once
/// @file Alerts: what a task or run tells the outside world when it fails, retries or succeeds
/// (`on_failure`, `on_retry`, `on_success`, `on_run_failure`, `on_run_success`), and the
/// notifiers that carry it (e-mail, webhook, command).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dag/core/connection.hpp>
#include <dag/core/time.hpp>

namespace dag {

/// One notifier of an alert list, as written: its `type` and its settings. List settings (an
/// e-mail's `to`) are joined with `,`.
struct notifier_spec {
  std::string type;                            ///< `email`, `webhook` or `command`
  std::map<std::string, std::string> settings; ///< `to`, `conn_id`, `url`, `command`, …
  int line = 0;                                ///< 1-based line in the DAG file, 0 when unknown
};

/// The settings each notifier type accepts; the first `required` of them must be set (for a
/// webhook: `url` or `conn_id`).
struct notifier_type {
  std::string_view name;                      ///< the `type:` value
  std::vector<std::string_view> settings;     ///< accepted settings (besides `type`)
  std::vector<std::string_view> one_of;       ///< at least one of these must be set
};

/// The notifier types dagrun ships.
inline const std::vector<notifier_type>& notifier_types() {
  static const std::vector<notifier_type> types{
      {"email", {"to", "conn_id", "subject"}, {"to"}},
      {"webhook", {"url", "conn_id", "endpoint"}, {"url", "conn_id"}},
      {"command", {"command"}, {"command"}},
  };
  return types;
}

/// Why `n` is not a valid notifier (unknown type, unknown or missing setting), or nullopt.
inline std::optional<std::string> notifier_problem(const notifier_spec& n) {
  const notifier_type* type = nullptr;
  std::string names;
  for (const auto& t : notifier_types()) {
    names += (names.empty() ? "" : ", ") + std::string(t.name);
    if (t.name == n.type) type = &t;
  }
  if (!type) return "notifier type '" + n.type + "' is not one of " + names;
  for (const auto& [key, value] : n.settings) {
    bool known = false;
    for (auto s : type->settings) known = known || s == key;
    if (!known) return "notifier '" + n.type + "': unknown setting '" + key + "'";
  }
  bool any = false;
  std::string wanted;
  for (auto s : type->one_of) {
    any = any || (n.settings.contains(std::string(s)) && !n.settings.at(std::string(s)).empty());
    wanted += (wanted.empty() ? "" : " or ") + std::string(s);
  }
  if (!any) return "notifier '" + n.type + "' needs " + wanted;
  return std::nullopt;
}

/// What happened, as an alert tells it.
struct alert {
  std::string event;        ///< `failure`, `retry`, `success`, `run_failure`, `run_success`, `sla_miss`
  std::string dag_id;       ///< the DAG
  std::string run_id;       ///< the run
  std::string task_id;      ///< the task; empty for a run's alert
  int try_number = 0;       ///< the try that ended; 0 for a run's alert
  std::string state;        ///< the state it left: `failed`, `up_for_retry`, `success`
  std::string error;        ///< why the try failed; empty otherwise
  std::string log_url;      ///< the try's log in the web UI (or its file when no base URL is set)
  time_point logical_date;  ///< the run's logical date
};

/// The web UI's path of a try's log, `/dags/D/runs/R/tasks/T/logs/N`, each part percent-encoded;
/// of a mapped task's instance, `?map_index=K` names it.
inline std::string try_log_path(const std::string& dag_id, const std::string& run_id, const std::string& task_id, int try_number,
                                int map_index = -1) {
  return "/dags/" + percent_encoded(dag_id) + "/runs/" + percent_encoded(run_id) + "/tasks/" + percent_encoded(task_id) + "/logs/" +
         std::to_string(try_number) + (map_index >= 0 ? "?map_index=" + std::to_string(map_index) : "");
}

}  // namespace dag
