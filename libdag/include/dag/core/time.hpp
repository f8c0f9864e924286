#pragma once
/// @file Time types and ISO-8601 / duration text formats used across libdag.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace dag {

/// An instant in UTC, to the second: logical dates, interval bounds, run-after times.
using time_point = std::chrono::sys_seconds;
/// A span of time to the second: retry delays, timeouts, schedule periods.
using duration = std::chrono::seconds;

/// An instant to the microsecond: when tries and runs start and end.
using timestamp = std::chrono::sys_time<std::chrono::microseconds>;

/// A source of "now", injected everywhere so that no decision reads the wall clock itself.
struct clock {
  virtual ~clock() = default;
  /// The current instant, to the second (scheduling decisions).
  virtual time_point now() const = 0;
  /// The current instant, to the microsecond (start and end of tries and runs).
  virtual timestamp precise_now() const { return now(); }
};

/// The real clock, for the binary only; tests inject their own.
struct system_clock final : clock {
  /// The wall clock, truncated to seconds.
  time_point now() const override {
    return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  }
  /// The wall clock, truncated to microseconds.
  timestamp precise_now() const override {
    return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
  }
};

/// Parses `90s`, `30m`, `6h`, `1d`, `1h30m`, `2w` (units d h m s w, each at most once, in
/// descending order, positive total); throws dag::usage_error naming the text otherwise.
duration parse_duration(std::string_view text);

/// Formats a duration in the same shortest form `parse_duration` reads (`1h30m`, `0s`).
std::string format_duration(duration d);

/// Parses an ISO-8601 date or date-time: `2024-01-01`, `2024-01-01T06:00`, `2024-01-01 06:00:00`,
/// with optional `Z` or `±HH:MM` offset. A time without an offset is wall-clock time in
/// `timezone` (an IANA name). Throws dag::usage_error naming the text on anything else.
time_point parse_time(std::string_view text, std::string_view timezone = "UTC");

/// parse_time keeping a fraction of the second, to the microsecond (`2024-01-01T06:00:00.250Z`):
/// for bounds on instants the store keeps to the microsecond (a REST API filter's times).
timestamp parse_precise_time(std::string_view text, std::string_view timezone = "UTC");

/// Formats as ISO-8601 with offset in UTC: `2024-01-01T00:00:00+00:00` (Airflow's `ts`).
std::string format_iso(time_point t);

/// Formats as ISO-8601 in the given IANA zone with its offset: `2024-03-31T03:00:00+02:00`.
std::string format_iso(time_point t, std::string_view timezone);

/// An optional instant (a try's or run's start or end) to the second, as format_iso; "" when unset.
inline std::string format_iso(const std::optional<timestamp>& t) {
  return t ? format_iso(std::chrono::floor<std::chrono::seconds>(*t)) : std::string{};
}

/// Seconds from `a` to `b` (a duration shown in listings), or nullopt when either is unset.
inline std::optional<double> seconds_between(const std::optional<timestamp>& a, const std::optional<timestamp>& b) {
  if (!a || !b) return std::nullopt;
  return std::chrono::duration<double>(*b - *a).count();
}

/// The last instant dagrun's dates reach, 9999-12-31T23:59:59Z: ISO-8601 text (what parse_time
/// reads and format_iso writes) has four-digit years. Schedules end there.
time_point latest_time();

/// True when `name` is a timezone the system's tz database knows.
bool is_known_timezone(std::string_view name);

/// The wall-clock time of `t` in `timezone`, as a naive date-time carried in a time_point as if
/// the zone were UTC (2024-03-31T01:00:00Z in Europe/Berlin → 2024-03-31T03:00:00 naive).
/// Throws dag::usage_error for an unknown zone.
time_point to_wall_clock(time_point t, std::string_view timezone);

/// The instant a naive wall-clock time (carried as if UTC) denotes in `timezone`. A time skipped
/// by a DST gap maps to the instant the gap ends; a repeated time to its first (earliest)
/// occurrence. Throws dag::usage_error for an unknown zone.
time_point from_wall_clock(time_point wall, std::string_view timezone);

}  // namespace dag
