#pragma once
/// @file Operators that decide which downstream tasks run (their flow rule does the skipping, in
/// the scheduler core): `latest_only` and `branch_day_of_week`.

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <string>

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>

namespace dag::operators {

/// `latest_only` — Airflow's LatestOnlyOperator: does nothing itself; outside the latest
/// scheduled run (backfills, catch-up runs) its direct downstream tasks are skipped.
struct latest_only {
  /// No fields.
  static operator_spec spec() {
    operator_spec s{"latest_only", {}, true, &run, flow_rule::latest_only};
    return s;
  }
  /// Succeeds at once; the scheduler decides what to skip.
  static operator_result run(const task&, task_context& ctx) {
    if (ctx.log) ctx.log("latest_only: the scheduler skips the downstream tasks unless this is the latest run");
    return operator_result::success();
  }
};

/// `branch_day_of_week` — Airflow's BranchDayOfWeekOperator: follows `follow_task_ids_if_true`
/// when today (UTC), or the run's logical date with `use_task_logical_date: true`, is one of
/// `week_day`, else `follow_task_ids_if_false`.
struct branch_day_of_week {
  /// `week_day` (one name or a list: Monday … Sunday), `use_task_logical_date`.
  static operator_spec spec() {
    operator_spec s{"branch_day_of_week",
                    {{"week_day", field_kind::string_list, true}, {"use_task_logical_date", field_kind::boolean}},
                    true,
                    &run,
                    flow_rule::branch};
    return s;
  }

  /// Monday = 0 … Sunday = 6 for a day name in any case; -1 when it is none.
  static int day_number(std::string name) {
    static constexpr std::array<const char*, 7> names{"monday", "tuesday", "wednesday", "thursday",
                                                      "friday", "saturday", "sunday"};
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (std::size_t i = 0; i < names.size(); ++i)
      if (name == names[i]) return static_cast<int>(i);
    return -1;
  }

  /// Pushes `true` or `false`.
  static operator_result run(const task& t, task_context& ctx) {
    const auto use_logical = ctx.fields.find("use_task_logical_date");
    const bool logical = use_logical != ctx.fields.end() && (use_logical->second == "true" || use_logical->second == "True");
    const time_point when = logical ? ctx.logical_date : std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    // 1970-01-01 was a Thursday (3 counting from Monday = 0).
    const auto days = std::chrono::floor<std::chrono::days>(when).time_since_epoch().count();
    const int today = static_cast<int>(((days % 7) + 7 + 3) % 7);
    bool match = false;
    auto it = t.fields.find("week_day");
    if (it == t.fields.end()) return operator_result::failed("branch_day_of_week needs week_day");
    std::vector<std::string> days_named = it->second.items;
    if (days_named.empty() && !it->second.text.empty()) days_named.push_back(it->second.text);
    for (const auto& name : days_named) {
      const int n = day_number(name);
      if (n < 0) return operator_result::failed("week_day: '" + name + "' is not a day of the week (Monday … Sunday)");
      match = match || n == today;
    }
    return operator_result::success(match ? "true" : "false");
  }
};

}  // namespace dag::operators
