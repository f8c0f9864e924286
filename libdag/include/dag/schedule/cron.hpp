#pragma once
/// @file 5-field cron expressions (minute hour day-of-month month day-of-week).

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <dag/core/time.hpp>

namespace dag {

/// A parsed cron expression, as croniter reads it: lists, ranges, steps (`*/7`, `1-10/2`), month
/// and weekday names (`JAN`, `MON`, any case), weekday 7 = Sunday, ranges that wrap around the
/// field's end (`NOV-FEB`, `FRI-MON`, `22-2`, `MON-SUN`), `L` (the month's last day), `15W` (the
/// weekday nearest the 15th), `FRI#2` (the month's second Friday), `L5` or `5L` (its last Friday),
/// and Vixie cron's rule that when both day-of-month and day-of-week are restricted a day matching
/// either fires.
class cron_expr {
public:
  /// Parses `text`; throws dag::usage_error naming the field and what is wrong with it.
  static cron_expr parse(std::string_view text);

  /// The expression as written.
  const std::string& text() const { return text_; }
  /// True when the hour field is `*` (the schedule covers every hour): such schedules fire by
  /// elapsed time across DST changes rather than by repeated or skipped wall-clock hours.
  bool every_hour() const { return hour_wildcard_; }
  /// True when the wall-clock date and time match.
  bool matches(int year, int month, int day, int hour, int minute) const;
  /// True when this date has fire times.
  bool day_matches(int year, int month, int day) const;

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
  bool last_day = false;            ///< day-of-month `L`: the month's last day
  int nearest_weekday = 0;          ///< day-of-month `15W`: the weekday nearest this day (0: none)
  /// Day-of-week `FRI#2` and `L5` by weekday (0 = Sunday): bit n (1–5) the month's n-th such
  /// day, bit 6 the last. When any is set they alone decide the day-of-week side (croniter).
  std::array<std::uint8_t, 7> nth_weekdays{};
  bool day_restricted = false;      ///< day-of-month field was not `*`
  bool weekday_restricted = false;  ///< day-of-week field was not `*`

private:
  /// The day-of-month side alone: its days, `L` or `W`.
  bool day_of_month_matches(int year, unsigned month, unsigned day) const;
  /// The day-of-week side alone: its weekdays, or its `#` and `L` days when it has them.
  bool day_of_week_matches(int year, unsigned month, unsigned day) const;
  bool has_nth() const;

  std::string text_;
  bool hour_wildcard_ = false;
};

}  // namespace dag
