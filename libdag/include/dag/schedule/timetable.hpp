#pragma once
/// @file When a DAG's runs happen: schedules, Airflow 2 data intervals and what is due now.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/time.hpp>
#include <dag/schedule/cron.hpp>

namespace dag {

/// What kind of schedule a DAG has.
enum class schedule_kind {
  none,      ///< manual runs only (no `schedule`)
  once,      ///< `@once`: a single run at `start_date`
  cron,      ///< a cron expression or a preset such as `@daily`
  period,    ///< a fixed duration such as `6h`, aligned to `start_date`
};

/// A parsed `schedule:` value.
struct schedule_spec {
  schedule_kind kind = schedule_kind::none;  ///< which kind
  std::string text;                          ///< as written (`@daily`, `0 6 * * MON`, `6h`, or empty)
  std::optional<cron_expr> cron;             ///< set for cron kind (presets expanded)
  duration period{0};                        ///< set for duration kind

  /// Parses empty text (none), `@once`, a preset, a cron expression or a duration;
  /// throws dag::usage_error naming the text and what is wrong.
  static schedule_spec parse(std::string_view text);
};

/// A half-open data interval `[start, end)`.
struct data_interval {
  time_point start;  ///< inclusive
  time_point end;    ///< exclusive (equal to `start` for `@once` and manual runs)
  friend bool operator==(const data_interval&, const data_interval&) = default;
};

/// One run a schedule produces: its logical date (the interval start) and when it may be created.
struct run_info {
  time_point logical_date;  ///< `logical_date`, equal to `interval.start`
  data_interval interval;   ///< the data interval
  time_point run_after;     ///< earliest time to create the run (the interval end)
  friend bool operator==(const run_info&, const run_info&) = default;
};

/// The kind of run, as in Airflow's run ids (`dataset_triggered`: a DAG scheduled on datasets).
enum class run_type { scheduled, manual, backfill, dataset_triggered };

/// A run that already exists, as the due-runs decision needs to see it.
struct existing_run {
  time_point logical_date;  ///< its logical date
  data_interval interval;   ///< its data interval
  run_type type = run_type::scheduled;  ///< how it was created
  bool active = false;      ///< queued or running (counts against max_active_runs)
};

/// A DAG's schedule bound to its timezone, start and end: computes data intervals.
/// Pure: every method takes the instants it needs; none reads a clock.
class timetable {
public:
  /// The timetable of a DAG; throws dag::usage_error for a bad schedule or timezone.
  explicit timetable(const definition& d);
  /// A timetable from parts (start_date required for scheduled kinds to produce runs).
  timetable(schedule_spec spec, std::string timezone, std::optional<time_point> start_date,
            std::optional<time_point> end_date);

  /// The parsed schedule.
  const schedule_spec& spec() const { return spec_; }

  /// The first run at or after `start_date` (start aligned to the schedule), if any.
  std::optional<run_info> first_run() const;
  /// The run that follows the one with interval `previous`, if any (honours `end_date`).
  std::optional<run_info> next_run(const data_interval& previous) const;
  /// The latest run whose interval has ended by `now` (catchup: false), if any.
  std::optional<run_info> latest_run(time_point now) const;
  /// The next `n` runs whose `run_after` is later than `after`, ignoring catchup and existing
  /// runs (what `dagrun dags next` prints).
  std::vector<run_info> runs_after(time_point after, std::size_t n) const;
  /// Every run whose logical date lies in `[first, last]`, both included (backfill).
  std::vector<run_info> runs_between(time_point first, time_point last) const;
  /// The same runs, one at a time, oldest first, while `visit` returns true: a range of any
  /// length (years 1 to 9999 hourly) costs no memory, and the caller can stop at any run.
  void each_run_between(time_point first, time_point last, const std::function<bool(const run_info&)>& visit) const;
  /// The run with this logical date, if the schedule produces one there.
  std::optional<run_info> run_at(time_point logical_date) const;
  /// The data interval of a manual run triggered for `run_after`, as Airflow's
  /// `infer_manual_data_interval`: for a cron, the last complete interval ending at or before
  /// it (`[previous fire, run_after]` when run_after is a fire time); for a duration,
  /// `[run_after - period, run_after]`; otherwise `[run_after, run_after]`. Ignores start_date.
  data_interval manual_interval(time_point run_after) const;

private:
  /// The first fire time strictly after `t` (cron kind).
  std::optional<time_point> fire_after(time_point t) const;
  /// The last fire time strictly before `t` (cron kind).
  std::optional<time_point> fire_before(time_point t) const;
  /// The first fire time at or after `start_date` (cron kind): where the first interval starts.
  std::optional<time_point> first_fire() const;
  /// The run whose interval starts at `start`, a schedule point, ignoring `end_date`.
  std::optional<run_info> run_starting(time_point start) const;
  /// The first run whose logical date is at or after both `t` and `start_date`, ignoring `end_date`.
  std::optional<run_info> first_run_from(time_point t) const;
  /// The run right after `r`, a run of this timetable, ignoring `end_date`.
  std::optional<run_info> successor(const run_info& r) const;
  /// The latest run whose interval has ended by `now`, ignoring `end_date`.
  std::optional<run_info> latest_complete(time_point now) const;
  /// True when a run with this logical date is within `end_date`.
  bool before_end(time_point logical_date) const { return !end_date_ || logical_date <= *end_date_; }
  /// True when the schedule produces runs at all (a kind other than none, and a start_date).
  bool produces_runs() const { return spec_.kind != schedule_kind::none && start_date_.has_value(); }

  friend std::vector<run_info> due_runs(const timetable&, bool, int, std::span<const existing_run>, time_point);

  schedule_spec spec_;
  std::string timezone_;
  std::optional<time_point> start_date_;
  std::optional<time_point> end_date_;
  // Zone lookups are done in the .cpp; this keeps <date/tz.h> out of the header.
  const void* zone_ = nullptr;
};

/// The scheduled runs to create now, oldest first: the next run after the latest scheduled or
/// backfill run (or the first run), and those after it, while `run_after <= now`, the logical
/// date is within `end_date`, and the DAG stays under `max_active_runs` counting `active` runs.
/// With `catchup` false it starts at the latest complete interval instead of the oldest missed one.
/// `@once` yields one run at `start_date` if none exists; no schedule yields nothing.
std::vector<run_info> due_runs(const timetable& tt, bool catchup, int max_active_runs,
                               std::span<const existing_run> existing, time_point now);

/// `due_runs` with the DAG's own catchup and max_active_runs.
std::vector<run_info> due_runs(const definition& d, std::span<const existing_run> existing, time_point now);

}  // namespace dag
