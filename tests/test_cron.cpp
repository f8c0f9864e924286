// 5-field cron: fields, lists, ranges, steps, names, presets, Vixie's day rule, and the
// wall-clock minute searches (next_match / prev_match) the timetable builds on. Wall-clock
// times are naive here (carried as if UTC); zones and DST are covered in test_timetable.cpp.

#include <dag/core/error.hpp>
#include <dag/core/time.hpp>
#include <dag/schedule/cron.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::chrono_literals;

dag::time_point at(std::string_view text) { return dag::parse_time(text); }

/// `YYYY-MM-DD HH:MM` of a naive wall-clock time, for readable expectations.
std::string minute_text(dag::time_point t) { return dag::format_iso(t).substr(0, 16); }

/// The first `n` matches at or after `from`.
std::vector<std::string> matches_from(std::string_view expr, std::string_view from, std::size_t n) {
  auto cron = dag::cron_expr::parse(expr);
  std::vector<std::string> out;
  auto t = cron.next_match(at(from));
  for (; t && out.size() < n; t = cron.next_match(*t + 1min)) out.push_back(minute_text(*t));
  return out;
}

/// The selected values of a bitset, as a list.
template <std::size_t N>
std::vector<int> values(const std::bitset<N>& bits) {
  std::vector<int> out;
  for (std::size_t i = 0; i < N; ++i)
    if (bits.test(i)) out.push_back(static_cast<int>(i));
  return out;
}

using strings = std::vector<std::string>;
using ints = std::vector<int>;

TEST_CASE("Cron.StepsAndRanges") {
  auto every7 = dag::cron_expr::parse("*/7 * * * *");
  CHECK(values(every7.minutes) == ints{0, 7, 14, 21, 28, 35, 42, 49, 56});
  CHECK(values(dag::cron_expr::parse("5-20/5 * * * *").minutes) == ints{5, 10, 15, 20});
  CHECK(values(dag::cron_expr::parse("1,2,30-32 * * * *").minutes) == ints{1, 2, 30, 31, 32});
  CHECK(values(dag::cron_expr::parse("5/15 * * * *").minutes) == ints{5, 20, 35, 50});
  CHECK(values(dag::cron_expr::parse("0 9-17/4 * * *").hours) == ints{9, 13, 17});
  CHECK(values(dag::cron_expr::parse("0 0 1 */3 *").months) == ints{1, 4, 7, 10});
}

TEST_CASE("Cron.StepRestartsEachHour") {
  // `*/7` is minutes 0,7,…,56 of every hour: after :56 comes :00 of the next hour, not :03.
  CHECK(matches_from("*/7 * * * *", "2024-01-01T00:50", 4) ==
        strings{"2024-01-01T00:56", "2024-01-01T01:00", "2024-01-01T01:07", "2024-01-01T01:14"});
}

TEST_CASE("Cron.Day31SkipsShortMonths") {
  CHECK(matches_from("0 0 31 * *", "2024-01-01", 8) ==
        strings{"2024-01-31T00:00", "2024-03-31T00:00", "2024-05-31T00:00", "2024-07-31T00:00",
                "2024-08-31T00:00", "2024-10-31T00:00", "2024-12-31T00:00", "2025-01-31T00:00"});
}

TEST_CASE("Cron.WeekdaySevenIsSunday") {
  // 2024-01-01 is a Monday.
  auto seven = dag::cron_expr::parse("0 0 * * 7");
  CHECK(values(seven.weekdays) == ints{0});
  CHECK(values(dag::cron_expr::parse("0 0 * * 5-7").weekdays) == ints{0, 5, 6});
  CHECK(matches_from("0 0 * * 7", "2024-01-01", 2) == strings{"2024-01-07T00:00", "2024-01-14T00:00"});
  CHECK(matches_from("0 0 * * 0", "2024-01-01", 2) == strings{"2024-01-07T00:00", "2024-01-14T00:00"});
}

TEST_CASE("Cron.NamesAnyCase") {
  CHECK(values(dag::cron_expr::parse("0 9 * * MON-FRI").weekdays) == ints{1, 2, 3, 4, 5});
  CHECK(values(dag::cron_expr::parse("0 9 * * mon-Fri").weekdays) == ints{1, 2, 3, 4, 5});
  CHECK(values(dag::cron_expr::parse("0 0 1 JAN,jul *").months) == ints{1, 7});
  CHECK(values(dag::cron_expr::parse("0 0 1 * sun,SAT").weekdays) == ints{0, 6});
  // 2024-01-05 is a Friday: the next weekday 09:00 after its morning is Monday.
  CHECK(matches_from("0 9 * * MON-FRI", "2024-01-05T10:00", 2) ==
        strings{"2024-01-08T09:00", "2024-01-09T09:00"});
  CHECK(matches_from("0 0 1 JAN,JUL *", "2024-02-01", 2) == strings{"2024-07-01T00:00", "2025-01-01T00:00"});
}

TEST_CASE("Cron.VixieOrWhenBothDayFieldsRestricted") {
  auto either = dag::cron_expr::parse("0 0 13 * FRI");
  CHECK(either.day_restricted);
  CHECK(either.weekday_restricted);
  // Every Friday and every 13th: 2024-09-13 is both, 2024-10-13 a Sunday.
  CHECK(matches_from("0 0 13 * FRI", "2024-09-01", 8) ==
        strings{"2024-09-06T00:00", "2024-09-13T00:00", "2024-09-20T00:00", "2024-09-27T00:00",
                "2024-10-04T00:00", "2024-10-11T00:00", "2024-10-13T00:00", "2024-10-18T00:00"});
  // One restricted field alone decides.
  CHECK(matches_from("0 0 13 * *", "2024-09-01", 2) == strings{"2024-09-13T00:00", "2024-10-13T00:00"});
  CHECK(matches_from("0 0 * * FRI", "2024-09-01", 2) == strings{"2024-09-06T00:00", "2024-09-13T00:00"});
  // A stepped `*/2` restricts (croniter): odd days OR Mondays. 2024-09-02 is a Monday.
  CHECK(matches_from("0 0 */2 * MON", "2024-09-01", 3) ==
        strings{"2024-09-01T00:00", "2024-09-02T00:00", "2024-09-03T00:00"});
  CHECK_FALSE(dag::cron_expr::parse("0 0 * * MON").day_restricted);
  CHECK_FALSE(dag::cron_expr::parse("0 0 1-31 * *").day_restricted);
}

TEST_CASE("Cron.LeapDayOnlyInLeapYears") {
  CHECK(matches_from("0 0 29 2 *", "2024-03-01", 2) == strings{"2028-02-29T00:00", "2032-02-29T00:00"});
  // 2100 is not a leap year: eight years between fires.
  CHECK(matches_from("0 0 29 2 *", "2096-03-01", 1) == strings{"2104-02-29T00:00"});
  auto leap = dag::cron_expr::parse("0 0 29 2 *");
  auto before = leap.prev_match(at("2104-01-01"));
  REQUIRE(before);
  CHECK(minute_text(*before) == "2096-02-29T00:00");
}

TEST_CASE("Cron.PrevMatchIsStrictlyBeforeAndMirrorsNextMatch") {
  auto cron = dag::cron_expr::parse("*/7 9-17 * * MON-FRI");
  auto prev = cron.prev_match(at("2024-01-08T09:00"));  // Monday 09:00 itself is excluded
  REQUIRE(prev);
  CHECK(minute_text(*prev) == "2024-01-05T17:56");
  for (std::string_view expr : {"*/7 9-17 * * MON-FRI", "0 0 13 * FRI", "30 2 * * *", "0 0 31 * *",
                                "15 */5 1,15 JAN-MAR *", "0 9 15W * *", "0 0 L * *", "0 6 * * MON#2",
                                "0 0 * * L5", "0 22-2 * NOV-FEB FRI-MON", "0 0 22-31 * L5"}) {
    auto c = dag::cron_expr::parse(expr);
    // A fixed pseudo-random walk over ten years of instants.
    std::uint64_t state = 12345;
    for (int i = 0; i < 200; ++i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      auto t = at("2020-01-01") + std::chrono::seconds{static_cast<std::int64_t>(state >> 36)};
      CAPTURE(expr);
      CAPTURE(dag::format_iso(t));
      auto next = c.next_match(t);
      REQUIRE(next);
      CHECK(*next >= t);
      auto p = c.prev_match(*next);
      REQUIRE(p);
      CHECK(*p < t);                                // nothing matches in [t, next)
      CHECK(c.next_match(*p + 1s) == next);         // and prev/next are neighbours
    }
  }
}

TEST_CASE("Cron.MatchesWallClockFields") {
  auto cron = dag::cron_expr::parse("30 2 * * MON");  // 2024-01-08 is a Monday
  CHECK(cron.matches(2024, 1, 8, 2, 30));
  CHECK_FALSE(cron.matches(2024, 1, 9, 2, 30));
  CHECK_FALSE(cron.matches(2024, 1, 8, 2, 31));
  CHECK_FALSE(cron.matches(2024, 1, 8, 3, 30));
  CHECK_FALSE(cron.matches(2024, 13, 8, 2, 30));
  CHECK_FALSE(dag::cron_expr::parse("0 0 * * *").matches(2023, 2, 29, 0, 0));
}

TEST_CASE("Cron.PresetsExpand") {
  auto same = [](std::string_view preset, std::string_view expr) {
    auto a = dag::cron_expr::parse(preset);
    auto b = dag::cron_expr::parse(expr);
    CAPTURE(preset);
    CHECK(a.text() == preset);
    CHECK(a.minutes == b.minutes);
    CHECK(a.hours == b.hours);
    CHECK(a.days == b.days);
    CHECK(a.months == b.months);
    CHECK(a.weekdays == b.weekdays);
    CHECK(a.every_hour() == b.every_hour());
  };
  same("@hourly", "0 * * * *");
  same("@daily", "0 0 * * *");
  same("@midnight", "0 0 * * *");
  same("@weekly", "0 0 * * 0");
  same("@monthly", "0 0 1 * *");
  same("@quarterly", "0 0 1 */3 *");
  same("@yearly", "0 0 1 1 *");
  same("@annually", "0 0 1 1 *");
  CHECK(dag::cron_expr::parse("@hourly").every_hour());
  CHECK(dag::cron_expr::parse("15 0-23 * * *").every_hour());
  CHECK_FALSE(dag::cron_expr::parse("@daily").every_hour());
  CHECK_FALSE(dag::cron_expr::parse("0 */2 * * *").every_hour());
  CHECK(dag::cron_expr::parse("  0 6 * * *  ").text() == "0 6 * * *");
}

TEST_CASE("Cron.RejectsBadExpressionsNamingTheProblem") {
  auto message = [](std::string_view expr) -> std::string {
    try {
      dag::cron_expr::parse(expr);
    } catch (const dag::usage_error& e) {
      return e.what();
    }
    return "(no error)";
  };
  CHECK(message("0 25 * * *") == "cron field 'hour' value 25 out of range 0-23 in '0 25 * * *'");
  CHECK(message("60 * * * *") == "cron field 'minute' value 60 out of range 0-59 in '60 * * * *'");
  CHECK(message("* * * * * *").find("'* * * * * *' has 6 fields; expected 5") != std::string::npos);
  CHECK(message("* * * *").find("has 4 fields") != std::string::npos);
  CHECK(message("").find("has 0 fields") != std::string::npos);
  CHECK(message("*/0 * * * *") == "cron field 'minute' step 0 must be at least 1 in '*/0 * * * *'");
  CHECK(message("0 0 * FOO *") == "cron field 'month' has unknown name 'FOO' in '0 0 * FOO *'");
  CHECK(message("0 0 * * FOO") == "cron field 'day-of-week' has unknown name 'FOO' in '0 0 * * FOO'");
  CHECK(message("0 0 * * 8") == "cron field 'day-of-week' value 8 out of range 0-7 in '0 0 * * 8'");
  CHECK(message("0 0 0 * *").find("'day-of-month' value 0 out of range 1-31") != std::string::npos);
  CHECK(message("0 0 X * *").find("'day-of-month' value 'X' is not a number") != std::string::npos);
  CHECK(message("0 0 * * L").find("'day-of-week' has unknown name 'L'") != std::string::npos);
  CHECK(message("0 0 * * FRI#6").find("the n in #n must be 1-5") != std::string::npos);
  CHECK(message("0 0 * * FRI#0").find("the n in #n must be 1-5") != std::string::npos);
  CHECK(message("0 0 * * MON,FRI#2").find("mixes plain weekdays with #/L forms") != std::string::npos);
  CHECK(message("0 9 15W,16 * *").find("W takes a single day, not a list") != std::string::npos);
  CHECK(message("0 9 32W * *").find("value 32 out of range 1-31") != std::string::npos);
  CHECK(message("0 9 0W * *").find("value 0 out of range 1-31") != std::string::npos);
  CHECK(message("0 0 * * L8").find("value 8 out of range 0-7") != std::string::npos);
  // croniter refuses these at their first search: the 15th is never a second Friday.
  CHECK(message("0 0 15 * FRI#2").find("never fires") != std::string::npos);
  CHECK(message("0 0 1 * L0").find("never fires") != std::string::npos);
  CHECK(message("0 0 31 2 *").find("never fires") != std::string::npos);
  CHECK(message("1,,2 * * * *").find("empty list item") != std::string::npos);
  CHECK(message("-5 * * * *").find("'minute' has an empty value") != std::string::npos);
  CHECK(message("*/x * * * *").find("step 'x' is not a whole number") != std::string::npos);
  CHECK(message("0 0 30 2 *").find("'0 0 30 2 *' never fires") != std::string::npos);
  CHECK(message("@fortnightly").find("unknown cron preset '@fortnightly'") != std::string::npos);
  // Impossible days are fine when the weekday field can still fire (Vixie OR), as in croniter:
  // `0 0 31 2 0` is every Sunday in February.
  CHECK_NOTHROW(dag::cron_expr::parse("0 0 30 2 MON"));
  CHECK(matches_from("0 0 31 2 0", "2026-01-01", 2) == strings{"2026-02-01T00:00", "2026-02-08T00:00"});
}

// ---------------------------------------------------------------------------------------------
// croniter's extensions. Vectors: croniter's documented behaviour (README and its test suite's
// examples), checked by hand against the calendar.

TEST_CASE("Cron.RangesWrapAroundTheFieldsEnd") {
  struct vector {
    std::string_view expr;
    std::size_t field;  // 0 minute … 4 day-of-week
    ints values;
  };
  const std::vector<vector> table{
      {"0 0 1 NOV-FEB *", 3, {1, 2, 11, 12}},
      {"0 0 * * FRI-MON", 4, {0, 1, 5, 6}},
      {"0 22-2 * * *", 1, {0, 1, 2, 22, 23}},
      {"50-5 * * * *", 0, {0, 1, 2, 3, 4, 5, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59}},
      {"0 0 28-3 * *", 2, {1, 2, 3, 28, 29, 30, 31}},
      // Sunday as 7 ends a range: Mon-Sun is every day, Fri-Sun the weekend and Friday.
      {"0 0 * * MON-SUN", 4, {0, 1, 2, 3, 4, 5, 6}},
      {"0 0 * * FRI-SUN", 4, {0, 5, 6}},
      {"0 0 * * 5-7", 4, {0, 5, 6}},
      {"0 0 * * Wed-Sun", 4, {0, 3, 4, 5, 6}},
      // Steps continue past the wrap as croniter computes them.
      {"0 0 1 APR-JAN/3 *", 3, {1, 4, 7, 10}},
      {"50-10/15 * * * *", 0, {6, 50}},
      {"0 0 1 NOV-FEB/2 *", 3, {1, 11}},
      // A range with equal ends is the whole cycle (croniter), with its step.
      {"5-5 * * * *", 0, {}},
      {"59-59/15 * * * *", 0, {0, 15, 30, 45}},
      {"0 0 1 JAN-JAN *", 3, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
      // A start with a step runs to the field's end; at the end it is that value alone.
      {"44/15 * * * *", 0, {44, 59}},
      {"59/15 * * * *", 0, {59}},
      {"0 0 * DEC/3 *", 3, {12}},
      {"0 0 * * SAT/2", 4, {6}},
      {"0 0 * * 7/2", 4, {0, 2, 4, 6}},
      {"0 0 31/5 * *", 2, {31}},
      {"0 0 10-L * *", 2, {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}},
  };
  for (const auto& v : table) {
    CAPTURE(v.expr);
    auto c = dag::cron_expr::parse(v.expr);
    ints got = v.field == 0 ? values(c.minutes) : v.field == 1 ? values(c.hours) : v.field == 2 ? values(c.days)
             : v.field == 3 ? values(c.months) : values(c.weekdays);
    if (v.values.empty()) CHECK(got.size() == 60);  // every minute
    else CHECK(got == v.values);
  }
  // A wrapped range searches like any other: Fri 22:00 to Mon 02:00 on weekends only.
  CHECK(matches_from("0 22-2 * * FRI-MON", "2024-01-05T21:00", 6) ==
        strings{"2024-01-05T22:00", "2024-01-05T23:00", "2024-01-06T00:00", "2024-01-06T01:00",
                "2024-01-06T02:00", "2024-01-06T22:00"});
}

TEST_CASE("Cron.LastDayOfMonth") {
  CHECK(matches_from("0 0 L * *", "2024-01-15", 4) ==
        strings{"2024-01-31T00:00", "2024-02-29T00:00", "2024-03-31T00:00", "2024-04-30T00:00"});
  CHECK(matches_from("0 0 l 2 *", "2023-01-01", 2) == strings{"2023-02-28T00:00", "2024-02-29T00:00"});
  CHECK(matches_from("0 0 1,15,L * *", "2023-02-10", 4) ==
        strings{"2023-02-15T00:00", "2023-02-28T00:00", "2023-03-01T00:00", "2023-03-15T00:00"});
  auto c = dag::cron_expr::parse("0 0 L * *");
  CHECK(c.last_day);
  CHECK(c.day_restricted);
  auto before = c.prev_match(at("2024-03-01"));
  REQUIRE(before);
  CHECK(minute_text(*before) == "2024-02-29T00:00");
}

TEST_CASE("Cron.NthAndLastWeekdayOfMonth") {
  // croniter's own vectors: the first Saturday from 2010-02-25, the fifth Wednesday from 2010-01-25.
  CHECK(matches_from("0 0 * * sat#1", "2010-02-25", 2) == strings{"2010-03-06T00:00", "2010-04-03T00:00"});
  CHECK(matches_from("0 0 * * wed#5", "2010-01-25", 2) == strings{"2010-03-31T00:00", "2010-06-30T00:00"});
  CHECK(matches_from("0 9 * * MON#2", "2024-01-01", 3) ==
        strings{"2024-01-08T09:00", "2024-02-12T09:00", "2024-03-11T09:00"});
  CHECK(matches_from("0 9 * * 1#2", "2024-01-01", 1) == strings{"2024-01-08T09:00"});
  CHECK(matches_from("0 0 * * sat#1,sun#2", "2024-01-01", 4) ==
        strings{"2024-01-06T00:00", "2024-01-14T00:00", "2024-02-03T00:00", "2024-02-11T00:00"});
  CHECK(matches_from("0 0 * * MON-WED#1", "2024-01-01", 3) ==
        strings{"2024-01-01T00:00", "2024-01-02T00:00", "2024-01-03T00:00"});
  // The last Friday, written as croniter does (L5) or as Quartz does (5L).
  const strings last_fridays{"2024-01-26T00:00", "2024-02-23T00:00", "2024-03-29T00:00"};
  CHECK(matches_from("0 0 * * L5", "2024-01-01", 3) == last_fridays);
  CHECK(matches_from("0 0 * * 5L", "2024-01-01", 3) == last_fridays);
  // With a day of month too, croniter's OR keeps the # form on both sides: the last Friday that
  // falls on the 22nd-31st (every one), or the last Friday.
  CHECK(matches_from("0 0 22-31 * L5", "2024-01-01", 3) == last_fridays);
  // All seven weekdays next to a # form: the # form decides (croniter).
  CHECK(matches_from("0 0 * 1 0-6,sat#3", "2024-01-01", 1) == strings{"2024-01-20T00:00"});
}

TEST_CASE("Cron.NearestWeekday") {
  // croniter's vectors for 15W, 1W, 30W and 31W.
  CHECK(matches_from("0 9 15W * *", "2024-01-01", 3) ==
        strings{"2024-01-15T09:00", "2024-02-15T09:00", "2024-03-15T09:00"});
  CHECK(matches_from("0 9 15W * *", "2024-06-01", 1) == strings{"2024-06-14T09:00"});  // Saturday: Friday
  CHECK(matches_from("0 9 15W * *", "2024-09-01", 1) == strings{"2024-09-16T09:00"});  // Sunday: Monday
  CHECK(matches_from("0 9 1W * *", "2024-05-31", 1) == strings{"2024-06-03T09:00"});   // never leaves the month
  CHECK(matches_from("0 9 31W * *", "2025-03-01", 1) == strings{"2025-03-31T09:00"});
  CHECK(matches_from("0 9 30W * *", "2024-11-01", 1) == strings{"2024-11-29T09:00"});
  CHECK(matches_from("0 9 31W * *", "2024-11-01", 1) == strings{"2024-11-29T09:00"});  // clamped to the 30th
  CHECK(matches_from("0 9 W15 * *", "2024-01-01", 1) == strings{"2024-01-15T09:00"});
  CHECK(matches_from("0 9 W15 * *", "2024-06-15T10:00", 1) == strings{"2024-07-15T09:00"});
}

}  // namespace
