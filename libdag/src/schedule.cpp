/// @file Schedules and Airflow 2 data intervals: CronDataIntervalTimetable,
/// DeltaDataIntervalTimetable and OnceTimetable, and the scheduler's "which runs are due" rule.
///
/// Cron fires in the DAG timezone's wall clock. Across DST changes:
///  - A cron whose hour field is not `*` (fixed hours, e.g. `30 2 * * *`) fires at wall-clock
///    times. A time skipped by a spring-forward gap fires at the instant the gap ends (`30 2 * * *`
///    in Europe/Berlin on 2024-03-31 fires at 01:00Z = 03:00+02:00); a time repeated by a fall-back
///    fires once, at its first occurrence. Several wall times mapping to one instant fire once.
///  - A cron whose hour field is `*` (every hour) fires by elapsed time, as Airflow does: every
///    real instant whose local wall-clock fields match fires. On fall-back day `0 * * * *` fires
///    at both 02:00+02:00 and 02:00+01:00 in Berlin; the hour skipped by a gap has no fire.

#include <dag/schedule/timetable.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include <date/date.h>
#include <date/tz.h>

#include <dag/core/error.hpp>

namespace dag {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Zones

/// A stretch of time during which a zone's UTC offset is constant.
struct offset_period {
  time_point begin;
  time_point end;
  duration offset;
};

/// The zone, or nullptr for UTC so that UTC DAGs never need the tz database.
const date::time_zone* locate(std::string_view name) {
  if (name == "UTC") return nullptr;
  try {
    return date::locate_zone(name);
  } catch (const std::runtime_error&) {
    throw usage_error("unknown timezone '" + std::string(name) +
                      "' (expected an IANA name such as UTC or Europe/Berlin)");
  }
}

offset_period period_at(const void* zone, time_point t) {
  if (zone == nullptr) return {time_point::min(), time_point::max(), 0s};
  auto info = static_cast<const date::time_zone*>(zone)->get_info(t);
  return {info.begin, info.end, info.offset};
}

// ---------------------------------------------------------------------------------------------
// Cron in a zone

/// Fire times of a cron whose hour field is `*`: the instants whose local wall clock matches.
/// Within one offset period local = utc + offset, so the search runs on wall-clock minutes there
/// and moves to the next period when the match falls beyond this one.
std::optional<time_point> elapsed_fire_after(const cron_expr& cron, const void* zone, time_point t) {
  time_point from = t + 1s;
  while (true) {
    offset_period p = period_at(zone, from);
    auto wall = cron.next_match(from + p.offset);
    if (!wall) return std::nullopt;
    time_point instant = *wall - p.offset;
    if (instant < p.end) return instant;
    from = p.end;
  }
}

std::optional<time_point> elapsed_fire_before(const cron_expr& cron, const void* zone, time_point t) {
  time_point to = t;  // exclusive
  while (true) {
    offset_period p = period_at(zone, to - 1s);
    auto wall = cron.prev_match(to + p.offset);
    if (!wall) return std::nullopt;
    time_point instant = *wall - p.offset;
    if (instant >= p.begin) return instant;
    to = p.begin;
  }
}

/// Wall-clock fire times in a DST overlap resolve to instants earlier than their wall order
/// suggests, so searches over wall time may step over a few candidates; this bounds the steps.
constexpr int max_wall_candidates = 100000;

/// An exclusive bound on the wall-clock times whose instant is before `t`: the latest wall time
/// shown before `t`. It can exceed t's own wall time after a fall-back; only the last two days
/// matter, because offsets lie within -12h..+14h so instants before that show earlier times.
time_point wall_upper_bound(const void* zone, time_point t) {
  offset_period p = period_at(zone, t - 1s);
  time_point bound = t + p.offset;
  const time_point horizon = t - 48h;
  while (p.begin > horizon) {
    time_point end = p.begin;
    p = period_at(zone, end - 1s);
    bound = std::max(bound, end + p.offset);
  }
  return bound;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// schedule_spec

schedule_spec schedule_spec::parse(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  schedule_spec spec;
  spec.text = std::string(text);
  if (text.empty()) return spec;
  if (text.size() == 5 && std::equal(text.begin(), text.end(), "@once", [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) == y;
      })) {
    spec.kind = schedule_kind::once;
    return spec;
  }
  if (text.front() == '@') {
    try {
      spec.cron = cron_expr::parse(text);
    } catch (const usage_error&) {
      throw usage_error("unknown schedule preset '" + spec.text +
                        "' (expected @once @hourly @daily @weekly @monthly @quarterly @yearly)");
    }
    spec.kind = schedule_kind::cron;
    return spec;
  }
  if (text.find_first_of(" \t") != std::string_view::npos) {
    spec.cron = cron_expr::parse(text);
    spec.kind = schedule_kind::cron;
    return spec;
  }
  try {
    spec.period = parse_duration(text);
  } catch (const usage_error&) {
    throw usage_error("invalid schedule '" + spec.text +
                      "': expected a 5-field cron expression, a preset such as @daily, or a "
                      "duration such as 6h or 1h30m");
  }
  spec.kind = schedule_kind::period;
  return spec;
}

// ---------------------------------------------------------------------------------------------
// timetable

timetable::timetable(const definition& d)
    : timetable(schedule_spec::parse(d.schedule()), d.timezone(), d.start_date(), d.end_date()) {}

timetable::timetable(schedule_spec spec, std::string zone_name, std::optional<time_point> start_date,
                     std::optional<time_point> end_date)
    : spec_(std::move(spec)),
      timezone_(std::move(zone_name)),
      start_date_(start_date),
      end_date_(end_date),
      zone_(locate(timezone_)) {
  // A spec assembled by hand rather than parsed may lack its parts; complete or refuse it here
  // so that no method has to check again.
  if (spec_.kind == schedule_kind::cron && !spec_.cron) spec_.cron = cron_expr::parse(spec_.text);
  if (spec_.kind == schedule_kind::period && spec_.period <= duration{0})
    throw usage_error("schedule '" + spec_.text + "' has a period of " + format_duration(spec_.period) +
                      "; it must be positive");
}

std::optional<time_point> timetable::fire_after(time_point t) const {
  const cron_expr& cron = *spec_.cron;
  if (cron.every_hour()) return elapsed_fire_after(cron, zone_, t);
  // Wall times up to t's own resolve to instants at or before t, so start just after it.
  auto wall = cron.next_match(t + period_at(zone_, t).offset + 1s);
  for (int i = 0; wall && i < max_wall_candidates; ++i) {
    time_point instant = zone_ ? from_wall_clock(*wall, timezone_) : *wall;
    if (instant > t) return instant;
    wall = cron.next_match(*wall + 1min);
  }
  return std::nullopt;
}

std::optional<time_point> timetable::fire_before(time_point t) const {
  const cron_expr& cron = *spec_.cron;
  if (cron.every_hour()) return elapsed_fire_before(cron, zone_, t);
  auto wall = cron.prev_match(wall_upper_bound(zone_, t));
  for (int i = 0; wall && i < max_wall_candidates; ++i) {
    time_point instant = zone_ ? from_wall_clock(*wall, timezone_) : *wall;
    if (instant < t) return instant;
    wall = cron.prev_match(*wall);
  }
  return std::nullopt;
}

std::optional<time_point> timetable::first_fire() const { return fire_after(*start_date_ - 1s); }

std::optional<run_info> timetable::run_starting(time_point start) const {
  switch (spec_.kind) {
    case schedule_kind::once:
      return run_info{start, {start, start}, start};
    case schedule_kind::period:
      return run_info{start, {start, start + spec_.period}, start + spec_.period};
    case schedule_kind::cron:
      if (auto end = fire_after(start)) return run_info{start, {start, *end}, *end};
      return std::nullopt;
    case schedule_kind::none:
      break;
  }
  return std::nullopt;
}

std::optional<run_info> timetable::first_run_from(time_point t) const {
  if (!produces_runs()) return std::nullopt;
  const time_point start = *start_date_;
  const time_point from = std::max(t, start);
  switch (spec_.kind) {
    case schedule_kind::once:
      return from == start ? run_starting(start) : std::nullopt;
    case schedule_kind::period: {
      const auto k = (from - start + spec_.period - 1s) / spec_.period;  // ceil: from >= start
      return run_starting(start + k * spec_.period);
    }
    case schedule_kind::cron:
      if (auto fire = fire_after(from - 1s)) return run_starting(*fire);
      return std::nullopt;
    case schedule_kind::none:
      break;
  }
  return std::nullopt;
}

std::optional<run_info> timetable::successor(const run_info& r) const {
  if (spec_.kind == schedule_kind::once) return std::nullopt;
  return run_starting(r.interval.end);
}

std::optional<run_info> timetable::first_run() const {
  if (!produces_runs()) return std::nullopt;
  auto r = first_run_from(*start_date_);
  if (r && !before_end(r->logical_date)) return std::nullopt;
  return r;
}

std::optional<run_info> timetable::next_run(const data_interval& previous) const {
  if (!produces_runs() || spec_.kind == schedule_kind::once) return std::nullopt;
  const time_point start = *start_date_;
  std::optional<time_point> next;
  // Airflow aligns the previous interval's end back onto the schedule (it may come from an
  // older schedule) and never starts before the first interval at or after start_date.
  if (spec_.kind == schedule_kind::period) {
    const time_point end = std::max(previous.end, start);
    next = start + (end - start) / spec_.period * spec_.period;
  } else {
    auto first = first_fire();
    if (!first) return std::nullopt;
    auto aligned = fire_before(previous.end + 1s);
    next = aligned ? std::max(*aligned, *first) : *first;
  }
  if (!before_end(*next)) return std::nullopt;
  return run_starting(*next);
}

std::optional<run_info> timetable::latest_complete(time_point now) const {
  if (!produces_runs()) return std::nullopt;
  const time_point start = *start_date_;
  switch (spec_.kind) {
    case schedule_kind::once:
      return start <= now ? run_starting(start) : std::nullopt;
    case schedule_kind::period:
      if (now < start + spec_.period) return std::nullopt;
      return run_starting(start + ((now - start) / spec_.period - 1) * spec_.period);
    case schedule_kind::cron: {
      auto end = fire_before(now + 1s);
      if (!end) return std::nullopt;
      auto begin = fire_before(*end);
      auto first = first_fire();
      if (!begin || !first || *begin < *first) return std::nullopt;
      return run_info{*begin, {*begin, *end}, *end};
    }
    case schedule_kind::none:
      break;
  }
  return std::nullopt;
}

std::optional<run_info> timetable::latest_run(time_point now) const {
  auto latest = latest_complete(now);
  if (!latest || before_end(latest->logical_date)) return latest;
  // Past end_date: the timetable's last run, whose interval ended even earlier.
  const time_point start = *start_date_;
  const time_point end = *end_date_;
  if (end < start) return std::nullopt;
  switch (spec_.kind) {
    case schedule_kind::once:
      return run_starting(start);
    case schedule_kind::period:
      return run_starting(start + (end - start) / spec_.period * spec_.period);
    case schedule_kind::cron: {
      auto begin = fire_before(end + 1s);
      auto first = first_fire();
      if (begin && first && *begin >= *first) return run_starting(*begin);
      return std::nullopt;
    }
    case schedule_kind::none:
      break;
  }
  return std::nullopt;
}

std::vector<run_info> timetable::runs_after(time_point after, std::size_t n) const {
  std::vector<run_info> out;
  if (!produces_runs() || n == 0) return out;
  const time_point start = *start_date_;
  // Jump straight to the first run whose run_after is later than `after`.
  std::optional<run_info> r;
  switch (spec_.kind) {
    case schedule_kind::once:
      r = first_run_from(start);
      break;
    case schedule_kind::period:
      r = run_starting(after < start ? start : start + (after - start) / spec_.period * spec_.period);
      break;
    case schedule_kind::cron: {
      auto end = fire_after(after);
      auto begin = end ? fire_before(*end) : std::nullopt;
      auto first = first_fire();
      if (begin && first && *begin >= *first)
        r = run_info{*begin, {*begin, *end}, *end};
      else
        r = first_run_from(start);
      break;
    }
    case schedule_kind::none:
      break;
  }
  for (; r && out.size() < n && before_end(r->logical_date); r = successor(*r))
    if (r->run_after > after) out.push_back(*r);
  return out;
}

std::vector<run_info> timetable::runs_between(time_point first, time_point last) const {
  std::vector<run_info> out;
  each_run_between(first, last, [&](const run_info& r) {
    out.push_back(r);
    return true;
  });
  return out;
}

void timetable::each_run_between(time_point first, time_point last, const std::function<bool(const run_info&)>& visit) const {
  for (auto r = first_run_from(first); r && r->logical_date <= last && before_end(r->logical_date); r = successor(*r))
    if (!visit(*r)) return;
}

std::optional<run_info> timetable::run_at(time_point logical_date) const {
  auto r = first_run_from(logical_date);
  if (r && r->logical_date == logical_date && before_end(logical_date)) return r;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// due_runs

namespace {

bool is_automated(const existing_run& r) { return r.type == run_type::scheduled || r.type == run_type::backfill; }

/// The scheduled or backfill run with the greatest logical date: where scheduling continues.
const existing_run* last_automated(std::span<const existing_run> existing) {
  const existing_run* last = nullptr;
  for (const auto& r : existing)
    if (is_automated(r) && (!last || r.logical_date > last->logical_date)) last = &r;
  return last;
}

}  // namespace

std::vector<run_info> due_runs(const timetable& tt, bool catchup, int max_active_runs,
                               std::span<const existing_run> existing, time_point now) {
  std::vector<run_info> out;
  if (!tt.produces_runs()) return out;

  std::set<time_point> taken;  // logical dates already used by any run, manual ones included
  int active = 0;
  for (const auto& r : existing) {
    taken.insert(r.logical_date);
    if (r.active) ++active;
  }
  auto room = [&] { return active + static_cast<int>(out.size()) < max_active_runs; };

  const existing_run* last = last_automated(existing);
  if (tt.spec().kind == schedule_kind::once) {
    auto r = tt.first_run();
    if (!last && r && r->run_after <= now && room() && !taken.contains(r->logical_date)) out.push_back(*r);
    return out;
  }

  std::optional<run_info> candidate = last ? tt.next_run(last->interval) : tt.first_run();
  if (!catchup) {
    // Never earlier than the latest complete interval. That one is taken before end_date is
    // applied, so a DAG whose end_date has passed creates nothing new (as in Airflow).
    auto latest = tt.latest_complete(now);
    if (latest && (!candidate || latest->logical_date > candidate->logical_date)) candidate = latest;
  }
  while (candidate && candidate->run_after <= now && tt.before_end(candidate->logical_date) && room()) {
    if (!taken.contains(candidate->logical_date)) out.push_back(*candidate);
    auto next = tt.successor(*candidate);
    if (next && next->logical_date <= candidate->logical_date) break;  // defensive: must advance
    candidate = next;
  }
  return out;
}

std::vector<run_info> due_runs(const definition& d, std::span<const existing_run> existing, time_point now) {
  return due_runs(timetable(d), d.catchup(), d.max_active_runs(), existing, now);
}

}  // namespace dag
