#pragma once
/// @file 5-field cron expressions (minute hour day-of-month month day-of-week).

#include <bitset>
#include <optional>
#include <string>
#include <string_view>

#include <dag/core/time.hpp>

namespace dag {

/// A parsed cron expression: lists, ranges, steps (`*/7`, `1-10/2`), month and weekday names
/// (`JAN`, `MON`, any case), weekday 7 = Sunday, and Vixie cron's rule that when both
/// day-of-month and day-of-week are restricted a day matching either fires.
class cron_expr {
public:
  /// Parses `text`; throws dag::usage_error naming the field and what is wrong with it.
  static cron_expr parse(std::string_view text);

  /// The expression as written.
  const std::string& text() const { return text_; }
  /// True when the hour field is `*` (the schedule covers every hour): such schedules fire by
  /// elapsed time across DST changes rather than by repeated or skipped wall-clock hours.
  bool every_hour() const { return hour_wildcard_; }
  /// True when the wall-clock date and time match (weekday: 0 = Sunday).
  bool matches(int month, int day, int weekday, int hour, int minute) const;
  /// True when a day with this month, day of month and weekday (0 = Sunday) has fire times.
  bool day_matches(int month, int day, int weekday) const;

  /// The earliest matching wall-clock minute at or after `wall`. Wall-clock (naive) times are
  /// carried in a time_point as if the zone were UTC; the search covers 50 years at most.
  std::optional<time_point> next_match(time_point wall) const;
  /// The latest matching wall-clock minute strictly before `wall` (same conventions).
  std::optional<time_point> prev_match(time_point wall) const;

  std::bitset<60> minutes;   ///< allowed minutes 0–59
  std::bitset<24> hours;     ///< allowed hours 0–23
  std::bitset<32> days;      ///< allowed days of month 1–31
  std::bitset<13> months;    ///< allowed months 1–12
  std::bitset<7> weekdays;   ///< allowed weekdays 0–6, 0 = Sunday
  bool day_restricted = false;      ///< day-of-month field was not `*`
  bool weekday_restricted = false;  ///< day-of-week field was not `*`

private:
  std::string text_;
  bool hour_wildcard_ = false;
};

}  // namespace dag
