// Durations (`90s`, `1h30m`), ISO-8601 times with and without offsets, and wall-clock conversion
// through the OS tz database, including the DST gap and overlap rules.

#include <dag/core/error.hpp>
#include <dag/core/time.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <string_view>

namespace doctest {
template <>
struct StringMaker<dag::time_point> {
  static String convert(dag::time_point t) { return dag::format_iso(t).c_str(); }
};
template <>
struct StringMaker<std::chrono::seconds> {
  static String convert(std::chrono::seconds d) { return (std::to_string(d.count()) + "s").c_str(); }
};
}  // namespace doctest

namespace {

using namespace std::chrono_literals;

/// An instant from UTC calendar fields, built independently of the parser under test.
dag::time_point utc(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  const std::chrono::sys_days day{std::chrono::year{y} / std::chrono::month{m} / std::chrono::day{d}};
  return dag::time_point{day} + std::chrono::hours{hh} + std::chrono::minutes{mm} + std::chrono::seconds{ss};
}

/// Checks that `call` throws dag::usage_error whose message quotes `text`.
template <class F>
void check_usage_error_naming(F&& call, std::string_view text) {
  try {
    call();
    FAIL("no usage_error for '" << std::string(text) << "'");
  } catch (const dag::usage_error& e) {
    CHECK_MESSAGE(std::string(e.what()).find("'" + std::string(text) + "'") != std::string::npos, e.what());
  }
}

TEST_CASE("Duration.ParsesEachUnitAndCombinations") {
  CHECK(dag::parse_duration("90s") == 90s);
  CHECK(dag::parse_duration("30m") == 30min);
  CHECK(dag::parse_duration("6h") == 6h);
  CHECK(dag::parse_duration("1d") == 24h);
  CHECK(dag::parse_duration("2w") == 14 * 24h);
  CHECK(dag::parse_duration("1h30m") == 90min);
  CHECK(dag::parse_duration("1w1d2h3m4s") == 8 * 24h + 2h + 3min + 4s);
  CHECK(dag::parse_duration("0h5m") == 5min);  // a zero term is fine while the total is positive
}

TEST_CASE("Duration.RejectsBadTextNamingIt") {
  for (std::string_view bad : {"1.5h", "5", "-1h", "1m1h", "", "0s", "0h0m", "1h1h", "h", "1H", "1h 30m",
                               " 6h", "1y", "6hours", "9999999999s"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(dag::parse_duration(bad), dag::usage_error);
    check_usage_error_naming([&] { dag::parse_duration(bad); }, bad);
  }
  CHECK_THROWS_WITH_AS(dag::parse_duration("1m1h"), doctest::Contains("invalid duration '1m1h'"),
                       dag::usage_error);
}

TEST_CASE("Duration.ALongRunOfDigitsIsRefusedBeforeItIsRead") {
  // Found by fuzz/fuzz_duration (fuzz/corpus/duration/regression-long-digits): the digits were
  // read into an int64 before their count was checked, overflowing (UBSan).
  CHECK_THROWS_AS(dag::parse_duration("7777777777777777777777!:"), dag::usage_error);
  CHECK_THROWS_AS(dag::parse_duration(std::string(40, '9') + "s"), dag::usage_error);
}

TEST_CASE("Duration.FormatsShortestFormThatParsesBack") {
  CHECK(dag::format_duration(0s) == "0s");
  CHECK(dag::format_duration(90s) == "1m30s");
  CHECK(dag::format_duration(90min) == "1h30m");
  CHECK(dag::format_duration(24h) == "1d");
  CHECK(dag::format_duration(7 * 24h) == "1w");
  CHECK(dag::format_duration(24h + 1h + 1min + 1s) == "1d1h1m1s");
  CHECK(dag::format_duration(-5min) == "-5m");
  for (auto d : {1s, 59s, 61s, 3600s, 5400s, 86399s, 694861s}) {
    CAPTURE(d);
    CHECK(dag::parse_duration(dag::format_duration(d)) == d);
  }
}

TEST_CASE("Time.ParsesAFractionOfASecondToTheMicrosecondWhenAskedTo") {
  using namespace std::chrono;
  const dag::timestamp whole{dag::parse_time("2024-01-01T06:00:00Z")};
  CHECK(dag::parse_precise_time("2024-01-01T06:00:00.25Z") == whole + 250000us);
  CHECK(dag::parse_precise_time("2024-01-01T08:00:00.123456789+02:00") == whole + 123456us);  // beyond microseconds: dropped
  CHECK(dag::parse_precise_time("2024-01-01T06:00") == whole);
  CHECK(dag::parse_time("2024-01-01T06:00:00.999Z") == dag::parse_time("2024-01-01T06:00:00Z"));  // to the second
  CHECK_THROWS_AS(dag::parse_precise_time("2024-01-01T06:00:00.Z"), dag::usage_error);
  CHECK_THROWS_AS(dag::parse_precise_time("yesterday"), dag::usage_error);
}

TEST_CASE("Time.ParsesIsoDateAndDateTimeForms") {
  CHECK(dag::parse_time("2024-01-01") == utc(2024, 1, 1));
  CHECK(dag::parse_time("2024-01-01T06:00") == utc(2024, 1, 1, 6));
  CHECK(dag::parse_time("2024-01-01T06:07:08") == utc(2024, 1, 1, 6, 7, 8));
  CHECK(dag::parse_time("2024-01-01 06:07:08") == utc(2024, 1, 1, 6, 7, 8));
  CHECK(dag::parse_time("2024-01-01T06:07:08.999") == utc(2024, 1, 1, 6, 7, 8));  // kept to the second
  CHECK(dag::parse_time("2024-02-29") == utc(2024, 2, 29));
}

TEST_CASE("Time.AppliesExplicitOffsets") {
  CHECK(dag::parse_time("2024-01-01T06:00:00Z") == utc(2024, 1, 1, 6));
  CHECK(dag::parse_time("2024-01-01T06:00:00+02:00") == utc(2024, 1, 1, 4));
  CHECK(dag::parse_time("2024-01-01T06:00-0500") == utc(2024, 1, 1, 11));
  CHECK(dag::parse_time("2024-01-01T06:00+05:30") == utc(2024, 1, 1, 0, 30));
  // An explicit offset wins over the zone the text would otherwise be read in.
  CHECK(dag::parse_time("2024-07-01T12:00:00+00:00", "Europe/Berlin") == utc(2024, 7, 1, 12));
}

TEST_CASE("Time.NaiveTimeIsWallClockInTheZone") {
  CHECK(dag::parse_time("2024-01-01", "Europe/Berlin") == utc(2023, 12, 31, 23));
  CHECK(dag::parse_time("2024-07-01T12:00", "Europe/Berlin") == utc(2024, 7, 1, 10));
  CHECK(dag::parse_time("2024-01-01", "America/New_York") == utc(2024, 1, 1, 5));
  CHECK(dag::parse_time("2024-07-01", "Asia/Kolkata") == utc(2024, 6, 30, 18, 30));
}

TEST_CASE("Time.NonexistentTimeMapsToGapEndAmbiguousToEarliest") {
  // Berlin 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00Z).
  CHECK(dag::parse_time("2024-03-31T02:30", "Europe/Berlin") == utc(2024, 3, 31, 1));
  CHECK(dag::parse_time("2024-03-31T03:00", "Europe/Berlin") == utc(2024, 3, 31, 1));
  // Berlin 2024-10-27: 02:00–03:00 happens twice (CEST, then CET); the first occurrence wins.
  CHECK(dag::parse_time("2024-10-27T02:30", "Europe/Berlin") == utc(2024, 10, 27, 0, 30));
  // New York 2024-03-10: 02:00 EST jumps to 03:00 EDT (07:00Z).
  CHECK(dag::parse_time("2024-03-10T02:30", "America/New_York") == utc(2024, 3, 10, 7));
  // New York 2024-11-03: 01:00–02:00 happens twice (EDT, then EST).
  CHECK(dag::parse_time("2024-11-03T01:30", "America/New_York") == utc(2024, 11, 3, 5, 30));
}

TEST_CASE("Time.RejectsBadTextNamingIt") {
  for (std::string_view bad : {"", "yesterday", "2024-13-01", "2024-02-30", "2023-02-29", "2024-1-1",
                               "24-01-01", "2024-01-01T25:00", "2024-01-01T06:60", "2024-01-01T06",
                               "2024-01-01T", "2024-01-01T06:00+2", "2024-01-01T06:00:00 extra",
                               "2024-01-01Z", "2024/01/01"}) {
    CAPTURE(bad);
    check_usage_error_naming([&] { dag::parse_time(bad); }, bad);
  }
  CHECK_THROWS_WITH_AS(dag::parse_time("2024-01-01", "Mars/Olympus_Mons"),
                       doctest::Contains("unknown timezone 'Mars/Olympus_Mons'"), dag::usage_error);
}

TEST_CASE("Time.FormatsIsoWithOffset") {
  CHECK(dag::format_iso(utc(2024, 1, 1)) == "2024-01-01T00:00:00+00:00");
  CHECK(dag::format_iso(utc(2024, 3, 31, 1), "Europe/Berlin") == "2024-03-31T03:00:00+02:00");
  CHECK(dag::format_iso(utc(2024, 3, 31, 0, 59, 59), "Europe/Berlin") == "2024-03-31T01:59:59+01:00");
  CHECK(dag::format_iso(utc(2024, 1, 1, 5), "America/New_York") == "2024-01-01T00:00:00-05:00");
  CHECK(dag::format_iso(utc(2024, 1, 1), "Asia/Kolkata") == "2024-01-01T05:30:00+05:30");
  CHECK(dag::format_iso(utc(2024, 1, 1), "UTC") == "2024-01-01T00:00:00+00:00");
  CHECK_THROWS_AS(dag::format_iso(utc(2024, 1, 1), "Nowhere/Else"), dag::usage_error);
  // Both occurrences of a repeated hour format distinctly and read back to the same instant.
  for (auto t : {utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30)}) {
    std::string text = dag::format_iso(t, "Europe/Berlin");
    CAPTURE(text);
    CHECK(dag::parse_time(text, "Europe/Berlin") == t);
  }
}

TEST_CASE("Time.KnowsTimezones") {
  CHECK(dag::is_known_timezone("UTC"));
  CHECK(dag::is_known_timezone("Europe/Berlin"));
  CHECK(dag::is_known_timezone("America/New_York"));
  CHECK_FALSE(dag::is_known_timezone("Mars/Olympus_Mons"));
  CHECK_FALSE(dag::is_known_timezone(""));
  CHECK_FALSE(dag::is_known_timezone("europe/berlin_x"));
}

TEST_CASE("Time.ConvertsBetweenInstantsAndWallClock") {
  CHECK(dag::to_wall_clock(utc(2024, 3, 31, 1), "Europe/Berlin") == utc(2024, 3, 31, 3));
  CHECK(dag::to_wall_clock(utc(2024, 10, 27, 0, 30), "Europe/Berlin") == utc(2024, 10, 27, 2, 30));
  CHECK(dag::to_wall_clock(utc(2024, 10, 27, 1, 30), "Europe/Berlin") == utc(2024, 10, 27, 2, 30));
  CHECK(dag::from_wall_clock(utc(2024, 10, 27, 2, 30), "Europe/Berlin") == utc(2024, 10, 27, 0, 30));
  CHECK(dag::from_wall_clock(utc(2024, 3, 31, 2, 0), "Europe/Berlin") == utc(2024, 3, 31, 1));
  CHECK(dag::from_wall_clock(utc(2024, 3, 31, 1, 59), "Europe/Berlin") == utc(2024, 3, 31, 0, 59));
  CHECK(dag::from_wall_clock(utc(2024, 6, 1), "UTC") == utc(2024, 6, 1));
}

}  // namespace
