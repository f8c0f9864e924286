// Schedules in a DAG's timezone and Airflow 2 data intervals: CronDataIntervalTimetable,
// DeltaDataIntervalTimetable (aligned to start_date here), @once, DST gaps and overlaps, and
// the scheduler's due-runs rule (catchup, max_active_runs, existing runs, end_date).

#include <dag/core/definition.hpp>
#include <dag/core/error.hpp>
#include <dag/core/time.hpp>
#include <dag/schedule/timetable.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace doctest {
template <>
struct StringMaker<dag::time_point> {
  static String convert(dag::time_point t) { return dag::format_iso(t).c_str(); }
};
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& list) {
    std::string out = "{";
    for (const auto& s : list) out += (out.size() > 1 ? ", " : "") + s;
    return (out + "}").c_str();
  }
};
}  // namespace doctest

namespace {

using namespace std::chrono_literals;
using strings = std::vector<std::string>;

dag::time_point at(std::string_view text) { return dag::parse_time(text); }

dag::timetable make(std::string_view schedule, std::string_view start, std::string zone = "UTC",
                    std::optional<std::string_view> end = std::nullopt) {
  return dag::timetable(dag::schedule_spec::parse(schedule), zone, dag::parse_time(start, zone),
                        end ? std::optional(dag::parse_time(*end, zone)) : std::nullopt);
}

/// Logical dates as UTC ISO text.
strings logical_dates(const std::vector<dag::run_info>& runs) {
  strings out;
  for (const auto& r : runs) out.push_back(dag::format_iso(r.logical_date));
  return out;
}

/// Logical dates as wall-clock ISO text in `zone`.
strings local_dates(const std::vector<dag::run_info>& runs, std::string_view zone) {
  strings out;
  for (const auto& r : runs) out.push_back(dag::format_iso(r.logical_date, zone));
  return out;
}

dag::existing_run existing(const dag::timetable& tt, std::string_view logical, dag::run_type type,
                           bool active = false) {
  auto r = tt.run_at(at(logical));
  REQUIRE(r);
  return {r->logical_date, r->interval, type, active};
}

// ---------------------------------------------------------------------------------------------
// schedule_spec

TEST_CASE("Schedule.ParsesEachKind") {
  CHECK(dag::schedule_spec::parse("").kind == dag::schedule_kind::none);
  CHECK(dag::schedule_spec::parse("  ").kind == dag::schedule_kind::none);
  CHECK(dag::schedule_spec::parse("@once").kind == dag::schedule_kind::once);
  auto daily = dag::schedule_spec::parse("@daily");
  CHECK(daily.kind == dag::schedule_kind::cron);
  REQUIRE(daily.cron);
  CHECK(daily.cron->hours.count() == 1);
  CHECK(daily.text == "@daily");
  auto cron = dag::schedule_spec::parse("0 6 * * MON");
  CHECK(cron.kind == dag::schedule_kind::cron);
  auto six = dag::schedule_spec::parse("6h");
  CHECK(six.kind == dag::schedule_kind::period);
  CHECK(six.period == 6h);
  CHECK(dag::schedule_spec::parse("1h30m").period == 90min);
}

TEST_CASE("Schedule.RejectsBadTextNamingIt") {
  for (std::string_view bad : {"daily", "1.5h", "5", "@fortnightly", "0 25 * * *", "* * * *"}) {
    CAPTURE(bad);
    try {
      dag::schedule_spec::parse(bad);
      FAIL("no error");
    } catch (const dag::usage_error& e) {
      CHECK_MESSAGE(std::string(e.what()).find(std::string(bad)) != std::string::npos, e.what());
    }
  }
  CHECK_THROWS_WITH_AS(dag::timetable(dag::schedule_spec::parse("@daily"), "Mars/Base", at("2024-01-01"),
                                      std::nullopt),
                       doctest::Contains("unknown timezone 'Mars/Base'"), dag::usage_error);
}

// ---------------------------------------------------------------------------------------------
// Data intervals

TEST_CASE("Timetable.DailyIntervalsFromStartDate") {
  auto tt = make("@daily", "2024-01-01");
  auto first = tt.first_run();
  REQUIRE(first);
  CHECK(first->logical_date == at("2024-01-01"));
  CHECK(first->interval == dag::data_interval{at("2024-01-01"), at("2024-01-02")});
  CHECK(first->run_after == at("2024-01-02"));
  auto second = tt.next_run(first->interval);
  REQUIRE(second);
  CHECK(second->interval == dag::data_interval{at("2024-01-02"), at("2024-01-03")});
}

TEST_CASE("Timetable.CronFirstRunIsFirstFireAtOrAfterStart") {
  auto tt = make("0 6 * * *", "2024-01-01T00:00");
  auto first = tt.first_run();
  REQUIRE(first);
  CHECK(first->logical_date == at("2024-01-01T06:00"));
  CHECK(first->run_after == at("2024-01-02T06:00"));
  // A start exactly on a fire time is itself the first logical date.
  auto on = make("0 6 * * *", "2024-01-01T06:00");
  CHECK(on.first_run()->logical_date == at("2024-01-01T06:00"));
  auto after = make("0 6 * * *", "2024-01-01T06:00:01");
  CHECK(after.first_run()->logical_date == at("2024-01-02T06:00"));
}

TEST_CASE("Timetable.DurationAlignedToStartDate") {
  auto tt = make("6h", "2024-01-01T01:00");
  CHECK(logical_dates(tt.runs_after(at("2023-01-01"), 3)) ==
        strings{"2024-01-01T01:00:00+00:00", "2024-01-01T07:00:00+00:00", "2024-01-01T13:00:00+00:00"});
  auto first = tt.first_run();
  REQUIRE(first);
  CHECK(first->interval == dag::data_interval{at("2024-01-01T01:00"), at("2024-01-01T07:00")});
  CHECK(first->run_after == at("2024-01-01T07:00"));
  // The latest complete interval stays on the start_date grid (not now − 6h as in Airflow).
  auto latest = tt.latest_run(at("2024-01-01T14:00"));
  REQUIRE(latest);
  CHECK(latest->interval == dag::data_interval{at("2024-01-01T07:00"), at("2024-01-01T13:00")});
  CHECK_FALSE(tt.latest_run(at("2024-01-01T06:59:59")));
  // An interval end off the grid (after a schedule change) continues on the grid.
  auto next = tt.next_run({at("2024-01-01T00:00"), at("2024-01-01T09:00")});
  REQUIRE(next);
  CHECK(next->logical_date == at("2024-01-01T07:00"));
}

TEST_CASE("Timetable.OnceRunsAtStartDate") {
  auto tt = make("@once", "2024-01-01T12:00");
  auto first = tt.first_run();
  REQUIRE(first);
  CHECK(first->logical_date == at("2024-01-01T12:00"));
  CHECK(first->interval == dag::data_interval{at("2024-01-01T12:00"), at("2024-01-01T12:00")});
  CHECK(first->run_after == at("2024-01-01T12:00"));
  CHECK_FALSE(tt.next_run(first->interval));
  CHECK(tt.runs_after(at("2024-01-01T11:59:59"), 5).size() == 1);
  CHECK(tt.runs_after(at("2024-01-01T12:00"), 5).empty());
  CHECK(tt.run_at(at("2024-01-01T12:00")));
  CHECK_FALSE(tt.run_at(at("2024-01-02T12:00")));
}

TEST_CASE("Timetable.NoScheduleOrNoStartMeansNoRuns") {
  auto none = make("", "2024-01-01");
  CHECK_FALSE(none.first_run());
  CHECK(none.runs_after(at("2023-01-01"), 3).empty());
  CHECK(none.runs_between(at("2023-01-01"), at("2025-01-01")).empty());
  dag::timetable no_start(dag::schedule_spec::parse("@daily"), "UTC", std::nullopt, std::nullopt);
  CHECK_FALSE(no_start.first_run());
  CHECK_FALSE(no_start.latest_run(at("2024-06-01")));
  CHECK(no_start.runs_after(at("2024-01-01"), 3).empty());
  CHECK(dag::due_runs(no_start, true, 16, {}, at("2024-06-01")).empty());
}

TEST_CASE("Timetable.EndDateStopsRuns") {
  auto tt = make("@daily", "2024-01-01", "UTC", "2024-01-03");
  CHECK(logical_dates(tt.runs_after(at("2023-01-01"), 10)) ==
        strings{"2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"});
  CHECK_FALSE(tt.next_run({at("2024-01-03"), at("2024-01-04")}));
  CHECK_FALSE(tt.run_at(at("2024-01-04")));
  // latest_run after end_date is the timetable's last run.
  auto latest = tt.latest_run(at("2024-02-01"));
  REQUIRE(latest);
  CHECK(latest->logical_date == at("2024-01-03"));
  auto before_start = make("@daily", "2024-01-05", "UTC", "2024-01-03");
  CHECK_FALSE(before_start.first_run());
}

TEST_CASE("Timetable.RunsBetweenIsInclusive") {
  auto tt = make("@daily", "2024-01-01");
  CHECK(logical_dates(tt.runs_between(at("2024-01-02"), at("2024-01-05"))) ==
        strings{"2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00", "2024-01-04T00:00:00+00:00",
                "2024-01-05T00:00:00+00:00"});
  CHECK(tt.runs_between(at("2024-01-02T00:00:01"), at("2024-01-04T23:59:59")).size() == 2);
  // Not before start_date.
  CHECK(logical_dates(tt.runs_between(at("2023-12-01"), at("2024-01-02"))) ==
        strings{"2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"});
  CHECK(tt.runs_between(at("2024-01-05"), at("2024-01-04")).empty());
  auto six = make("6h", "2024-01-01T03:00");
  CHECK(logical_dates(six.runs_between(at("2024-01-01T09:00"), at("2024-01-01T21:00"))) ==
        strings{"2024-01-01T09:00:00+00:00", "2024-01-01T15:00:00+00:00", "2024-01-01T21:00:00+00:00"});
  auto ended = make("@daily", "2024-01-01", "UTC", "2024-01-03");
  CHECK(ended.runs_between(at("2024-01-01"), at("2024-01-31")).size() == 3);
}

TEST_CASE("Timetable.RunAtOnlyOnScheduleDates") {
  auto tt = make("0 6 * * *", "2024-01-01");
  auto r = tt.run_at(at("2024-01-03T06:00"));
  REQUIRE(r);
  CHECK(r->interval == dag::data_interval{at("2024-01-03T06:00"), at("2024-01-04T06:00")});
  CHECK_FALSE(tt.run_at(at("2024-01-03T07:00")));
  CHECK_FALSE(tt.run_at(at("2023-12-31T06:00")));  // before start_date
  auto six = make("6h", "2024-01-01T03:00");
  CHECK(six.run_at(at("2024-01-02T03:00")));
  CHECK_FALSE(six.run_at(at("2024-01-02T04:00")));
}

TEST_CASE("Timetable.RunsAfterFarInTheFutureJumps") {
  // Walking from start_date minute by minute would take ~60 million steps.
  auto minutely = make("*/5 * * * *", "1970-01-01");
  auto runs = minutely.runs_after(at("2090-06-15T10:02"), 3);
  CHECK(logical_dates(runs) ==
        strings{"2090-06-15T10:00:00+00:00", "2090-06-15T10:05:00+00:00", "2090-06-15T10:10:00+00:00"});
  CHECK(runs[0].run_after == at("2090-06-15T10:05"));
  auto leap = make("0 0 29 2 *", "2000-01-01");
  auto leaps = leap.runs_after(at("2097-01-01"), 1);
  REQUIRE(leaps.size() == 1);
  CHECK(leaps[0].interval == dag::data_interval{at("2096-02-29"), at("2104-02-29")});
  auto six = make("6h", "2000-01-01T03:00");
  CHECK(logical_dates(six.runs_after(at("2090-06-15T10:02"), 2)) ==
        strings{"2090-06-15T09:00:00+00:00", "2090-06-15T15:00:00+00:00"});  // [03:00, 09:00) is done
  auto berlin = make("0 * * * *", "2000-01-01", "Europe/Berlin");
  CHECK(local_dates(berlin.runs_after(at("2030-07-01T10:30"), 2), "Europe/Berlin") ==
        strings{"2030-07-01T12:00:00+02:00", "2030-07-01T13:00:00+02:00"});
  // run_after strictly later than `after`.
  auto daily = make("@daily", "2024-01-01");
  CHECK(logical_dates(daily.runs_after(at("2024-01-03"), 1)) == strings{"2024-01-03T00:00:00+00:00"});
}

TEST_CASE("Timetable.ManualIntervalInferredAsAirflowDoes") {
  struct vector {
    std::string_view schedule;
    std::string_view zone;
    std::string_view run_after;
    std::string_view start;  // expected interval, UTC
    std::string_view end;
  };
  // CronDataIntervalTimetable.infer_manual_data_interval: the last complete interval at or before
  // run_after; DeltaDataIntervalTimetable: [run_after - delta, run_after]; others: run_after.
  const std::vector<vector> table{
      {"@daily", "UTC", "2024-01-25T01:00", "2024-01-24", "2024-01-25"},        // between fires
      {"@daily", "UTC", "2024-01-25T00:00", "2024-01-24", "2024-01-25"},        // on a fire
      {"0 6 * * MON", "UTC", "2024-01-10T12:00", "2024-01-01T06:00", "2024-01-08T06:00"},
      {"0 * * * *", "UTC", "2024-01-25T10:59:59", "2024-01-25T09:00", "2024-01-25T10:00"},
      {"30 2 * * *", "Europe/Berlin", "2024-03-31T02:00", "2024-03-30T01:30", "2024-03-31T01:30"},
      {"6h", "UTC", "2024-01-25T01:00", "2024-01-24T19:00", "2024-01-25T01:00"},
      {"@once", "UTC", "2024-01-25T01:00", "2024-01-25T01:00", "2024-01-25T01:00"},
      {"", "UTC", "2024-01-25T01:00", "2024-01-25T01:00", "2024-01-25T01:00"},
  };
  for (const auto& v : table) {
    CAPTURE(v.schedule);
    CAPTURE(v.run_after);
    auto tt = make(v.schedule, "2024-01-01", std::string(v.zone));
    CHECK(tt.manual_interval(at(v.run_after)) == dag::data_interval{at(v.start), at(v.end)});
  }
}

TEST_CASE("Timetable.DatesEndInYear9999") {
  CHECK(dag::format_iso(dag::latest_time()) == "9999-12-31T23:59:59+00:00");
  auto yearly = make("@yearly", "2000-01-01");
  // The run of 9999-01-01 would end in year 10000: the listing stops before it.
  CHECK(logical_dates(yearly.runs_after(at("9997-06-01"), 5)) ==
        strings{"9997-01-01T00:00:00+00:00", "9998-01-01T00:00:00+00:00"});
  CHECK(yearly.runs_after(at("9999-06-01"), 5).empty());
  CHECK(yearly.runs_after(dag::latest_time(), 1).empty());
  CHECK(yearly.runs_between(at("9998-01-01"), at("9999-12-31")).size() == 1);
  auto daily = make("1d", "2000-01-01");
  auto last = daily.runs_after(at("9999-12-29"), 5);
  REQUIRE(last.size() == 2);
  CHECK(last[1].run_after == at("9999-12-31"));
  auto berlin = make("30 2 * * *", "2000-01-01", "Europe/Berlin");
  auto runs = berlin.runs_after(at("9999-12-29"), 5);
  CHECK(logical_dates(runs) == strings{"9999-12-28T01:30:00+00:00", "9999-12-29T01:30:00+00:00",
                                       "9999-12-30T01:30:00+00:00"});  // 12-31's ends in year 10000
  // Every listed run_after is a time --after accepts.
  for (const auto& r : runs) CHECK(dag::parse_time(dag::format_iso(r.run_after)) == r.run_after);
}

// ---------------------------------------------------------------------------------------------
// DST

// Airflow's rules for a fixed-hour cron (CronMixin with pendulum's make_aware, fold=1): a time
// skipped by a gap moves forward by the gap's length keeping its minutes; a repeated time fires
// once, at its second occurrence, and the data intervals run from fire to fire.

TEST_CASE("Dst.FixedHourCronInBerlinGapMovesForwardByTheGap") {
  auto tt = make("30 2 * * *", "2024-03-28", "Europe/Berlin");
  auto runs = tt.runs_after(at("2024-03-28"), 4);
  CHECK(logical_dates(runs) == strings{"2024-03-28T01:30:00+00:00", "2024-03-29T01:30:00+00:00",
                                       "2024-03-30T01:30:00+00:00", "2024-03-31T01:30:00+00:00"});
  CHECK(local_dates(runs, "Europe/Berlin").back() == "2024-03-31T03:30:00+02:00");
  CHECK(runs[2].run_after == at("2024-03-31T01:30"));  // a 23-hour interval
  CHECK(runs.back().run_after == at("2024-04-01T00:30"));  // 02:30+02:00 the next day
  // Going backwards lands on the same instants.
  auto latest = tt.latest_run(at("2024-04-01T00:30"));
  REQUIRE(latest);
  CHECK(latest->logical_date == at("2024-03-31T01:30"));
  CHECK(tt.run_at(at("2024-03-31T01:30")));
  CHECK_FALSE(tt.run_at(at("2024-03-31T01:00")));
  CHECK_FALSE(tt.run_at(at("2024-03-31T00:30")));
}

TEST_CASE("Dst.FixedHourCronTimesMovedOntoOthersFireOnce") {
  // 02:00 and 02:30 move to 03:00 and 03:30, which the expression also names.
  auto tt = make("0,30 2,3 * * *", "2024-03-30T12:00", "Europe/Berlin");
  CHECK(local_dates(tt.runs_after(at("2024-03-30T12:00"), 3), "Europe/Berlin") ==
        strings{"2024-03-31T03:00:00+02:00", "2024-03-31T03:30:00+02:00", "2024-04-01T02:00:00+02:00"});
  auto gap_only = make("0,30 2 * * *", "2024-03-30T12:00", "Europe/Berlin");
  CHECK(local_dates(gap_only.runs_after(at("2024-03-30T12:00"), 3), "Europe/Berlin") ==
        strings{"2024-03-31T03:00:00+02:00", "2024-03-31T03:30:00+02:00", "2024-04-01T02:00:00+02:00"});
}

TEST_CASE("Dst.FixedHourCronInBerlinOverlapFiresOnceAtTheSecondOccurrence") {
  auto tt = make("30 2 * * *", "2024-10-25", "Europe/Berlin");
  auto runs = tt.runs_after(at("2024-10-26T00:30"), 3);  // the run of 10-25 becomes runnable then
  CHECK(local_dates(runs, "Europe/Berlin") ==
        strings{"2024-10-26T02:30:00+02:00", "2024-10-27T02:30:00+01:00", "2024-10-28T02:30:00+01:00"});
  CHECK(runs[0].interval == dag::data_interval{at("2024-10-26T00:30"), at("2024-10-27T01:30")});  // 25 hours
  CHECK(runs[1].logical_date == at("2024-10-27T01:30"));
  CHECK(runs[1].run_after == at("2024-10-28T01:30"));
  auto latest = tt.latest_run(at("2024-10-28T01:29"));
  REQUIRE(latest);
  CHECK(latest->logical_date == at("2024-10-26T00:30"));
  CHECK_FALSE(tt.run_at(at("2024-10-27T00:30")));  // the first 02:30 does not fire
}

TEST_CASE("Dst.MidnightCronIntervalsSpanTheChange") {
  auto berlin = make("0 0 * * *", "2024-03-30", "Europe/Berlin");
  auto runs = berlin.runs_after(at("2024-03-29"), 2);
  CHECK(logical_dates(runs) == strings{"2024-03-29T23:00:00+00:00", "2024-03-30T23:00:00+00:00"});
  CHECK(runs[1].run_after == at("2024-03-31T22:00"));  // a 23-hour day
  auto ny = make("0 0 * * *", "2024-11-02", "America/New_York");
  auto ny_runs = ny.runs_after(at("2024-11-01"), 2);
  CHECK(logical_dates(ny_runs) == strings{"2024-11-02T04:00:00+00:00", "2024-11-03T04:00:00+00:00"});
  CHECK(ny_runs[1].run_after == at("2024-11-04T05:00"));  // a 25-hour day
}

/// One zone's vectors: the fire times of `expr` from `from` on, as local ISO text.
struct dst_vector {
  std::string_view zone;
  std::string_view expr;
  std::string_view from;  // UTC
  strings local;
};

TEST_CASE("Dst.FixedHourCronVectorsInFourZones") {
  const std::vector<dst_vector> table{
      // Berlin: gap 2024-03-31 02:00→03:00, overlap 2024-10-27 03:00→02:00.
      {"Europe/Berlin", "30 2 * * *", "2024-03-30T00:00",
       {"2024-03-30T02:30:00+01:00", "2024-03-31T03:30:00+02:00", "2024-04-01T02:30:00+02:00"}},
      {"Europe/Berlin", "0 2 * * *", "2024-03-30T00:00",
       {"2024-03-30T02:00:00+01:00", "2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00"}},
      {"Europe/Berlin", "15 2 * * *", "2024-10-26T00:00",
       {"2024-10-26T02:15:00+02:00", "2024-10-27T02:15:00+01:00", "2024-10-28T02:15:00+01:00"}},
      // New York: gap 2024-03-10 02:00→03:00, overlap 2024-11-03 02:00→01:00.
      {"America/New_York", "30 2 * * *", "2024-03-09T00:00",
       {"2024-03-09T02:30:00-05:00", "2024-03-10T03:30:00-04:00", "2024-03-11T02:30:00-04:00"}},
      {"America/New_York", "30 1 * * *", "2024-11-02T00:00",
       {"2024-11-02T01:30:00-04:00", "2024-11-03T01:30:00-05:00", "2024-11-04T01:30:00-05:00"}},
      {"America/New_York", "0 1 * * *", "2024-11-02T00:00",
       {"2024-11-02T01:00:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-04T01:00:00-05:00"}},
      // Adelaide (+09:30/+10:30): gap 2024-10-06 02:00→03:00, overlap 2024-04-07 03:00→02:00.
      {"Australia/Adelaide", "30 2 * * *", "2024-10-04T00:00",
       {"2024-10-05T02:30:00+09:30", "2024-10-06T03:30:00+10:30", "2024-10-07T02:30:00+10:30"}},
      {"Australia/Adelaide", "45 2 * * *", "2024-04-05T00:00",
       {"2024-04-06T02:45:00+10:30", "2024-04-07T02:45:00+09:30", "2024-04-08T02:45:00+09:30"}},
      // São Paulo's last DST: midnight skipped on 2018-11-04 (00:00→01:00), 23:00 repeated on
      // 2019-02-16 (00:00→23:00).
      {"America/Sao_Paulo", "0 0 * * *", "2018-11-02T12:00",
       {"2018-11-03T00:00:00-03:00", "2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"}},
      {"America/Sao_Paulo", "30 23 * * *", "2019-02-15T12:00",
       {"2019-02-15T23:30:00-02:00", "2019-02-16T23:30:00-03:00", "2019-02-17T23:30:00-03:00"}},
  };
  for (const auto& v : table) {
    CAPTURE(v.zone);
    CAPTURE(v.expr);
    auto tt = make(v.expr, "2018-01-01", std::string(v.zone));
    auto runs = tt.runs_between(at(v.from), at(v.from) + std::chrono::days{3});
    strings got = local_dates(runs, v.zone);
    got.resize(std::min(got.size(), v.local.size()));
    CHECK(got == v.local);
    // Every interval runs from one fire to the next, and the searches agree both ways.
    for (const auto& r : runs) {
      CHECK(tt.run_at(r.logical_date) == r);
      CHECK(tt.latest_run(r.run_after)->logical_date == r.logical_date);
    }
  }
}

TEST_CASE("Dst.HourlyCronFiresByElapsedTimeInBerlin") {
  // Spring forward: 02:00–03:00 does not exist, so nothing fires in it; :30 is not invented.
  auto half = make("30 * * * *", "2024-03-30", "Europe/Berlin");
  CHECK(local_dates(half.runs_after(at("2024-03-31T00:30"), 3), "Europe/Berlin") ==
        strings{"2024-03-31T01:30:00+01:00", "2024-03-31T03:30:00+02:00", "2024-03-31T04:30:00+02:00"});
  auto hourly = make("0 * * * *", "2024-03-30", "Europe/Berlin");
  CHECK(logical_dates(hourly.runs_after(at("2024-03-31T00:00"), 3)) ==
        strings{"2024-03-31T00:00:00+00:00", "2024-03-31T01:00:00+00:00", "2024-03-31T02:00:00+00:00"});
  // Fall back: 02:00 happens twice and fires twice.
  auto runs = hourly.runs_after(at("2024-10-27T00:00"), 3);
  CHECK(local_dates(runs, "Europe/Berlin") ==
        strings{"2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00", "2024-10-27T03:00:00+01:00"});
  CHECK(runs[0].run_after == runs[1].logical_date);
  // Backwards through the repeated hour.
  auto latest = hourly.latest_run(at("2024-10-27T01:30"));
  REQUIRE(latest);
  CHECK(latest->interval == dag::data_interval{at("2024-10-27T00:00"), at("2024-10-27T01:00")});
  CHECK(hourly.runs_between(at("2024-10-26T22:00"), at("2024-10-27T03:00")).size() == 6);
}

TEST_CASE("Dst.HourlyCronFiresByElapsedTimeInNewYork") {
  auto hourly = make("0 * * * *", "2024-03-09", "America/New_York");
  CHECK(local_dates(hourly.runs_after(at("2024-03-10T06:00"), 3), "America/New_York") ==
        strings{"2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"});
  CHECK(local_dates(hourly.runs_after(at("2024-11-03T05:00"), 3), "America/New_York") ==
        strings{"2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00"});
  // The same hour written as a fixed list fires once: 0-23 is every hour, 1 is not.
  auto at_one = make("0 1 * * *", "2024-11-02", "America/New_York");
  CHECK(logical_dates(at_one.runs_after(at("2024-11-03T05:00"), 2)) ==
        strings{"2024-11-02T05:00:00+00:00", "2024-11-03T06:00:00+00:00"});
}

// ---------------------------------------------------------------------------------------------
// due_runs

TEST_CASE("Due.CatchupCreatesEveryMissedInterval") {
  auto tt = make("@daily", "2024-01-01");
  auto due = dag::due_runs(tt, true, 16, {}, at("2024-01-05"));
  CHECK(logical_dates(due) == strings{"2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00",
                                      "2024-01-03T00:00:00+00:00", "2024-01-04T00:00:00+00:00"});
  CHECK(dag::due_runs(tt, true, 16, {}, at("2024-01-04T23:59:59")).size() == 3);
  CHECK(dag::due_runs(tt, true, 16, {}, at("2024-01-01T23:59:59")).empty());
}

TEST_CASE("Due.MaxActiveRunsCapsNewRunsCountingActiveOnes") {
  auto tt = make("@daily", "2024-01-01");
  CHECK(logical_dates(dag::due_runs(tt, true, 2, {}, at("2024-01-05"))) ==
        strings{"2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"});
  std::vector<dag::existing_run> runs{existing(tt, "2024-01-01", dag::run_type::scheduled, true)};
  CHECK(logical_dates(dag::due_runs(tt, true, 2, runs, at("2024-01-05"))) ==
        strings{"2024-01-02T00:00:00+00:00"});
  runs.push_back({at("2023-06-01T12:00"), {at("2023-06-01T12:00"), at("2023-06-01T12:00")},
                  dag::run_type::manual, true});
  CHECK(dag::due_runs(tt, true, 2, runs, at("2024-01-05")).empty());
}

TEST_CASE("Due.WithoutCatchupOnlyTheLatestInterval") {
  auto tt = make("@daily", "2024-01-01");
  CHECK(logical_dates(dag::due_runs(tt, false, 16, {}, at("2024-01-05"))) ==
        strings{"2024-01-04T00:00:00+00:00"});
  CHECK(logical_dates(dag::due_runs(tt, false, 16, {}, at("2024-01-05T13:00"))) ==
        strings{"2024-01-04T00:00:00+00:00"});
  // An old last run does not pull scheduling back.
  std::vector<dag::existing_run> runs{existing(tt, "2024-01-01", dag::run_type::scheduled)};
  CHECK(logical_dates(dag::due_runs(tt, false, 16, runs, at("2024-01-05"))) ==
        strings{"2024-01-04T00:00:00+00:00"});
  // Once the latest exists, nothing more until the next interval ends.
  runs.push_back(existing(tt, "2024-01-04", dag::run_type::scheduled));
  CHECK(dag::due_runs(tt, false, 16, runs, at("2024-01-05T13:00")).empty());
  // Before the first interval has ended there is nothing to run.
  CHECK(dag::due_runs(tt, false, 16, {}, at("2024-01-01T12:00")).empty());
  CHECK(logical_dates(dag::due_runs(tt, false, 16, {}, at("2024-01-02"))) ==
        strings{"2024-01-01T00:00:00+00:00"});
}

TEST_CASE("Due.ContinuesFromTheLastAutomatedRun") {
  auto tt = make("@daily", "2024-01-01");
  std::vector<dag::existing_run> runs{existing(tt, "2024-01-01", dag::run_type::scheduled),
                                      existing(tt, "2024-01-02", dag::run_type::scheduled)};
  CHECK(logical_dates(dag::due_runs(tt, true, 16, runs, at("2024-01-05"))) ==
        strings{"2024-01-03T00:00:00+00:00", "2024-01-04T00:00:00+00:00"});
  // A backfill run counts as automated.
  runs.push_back(existing(tt, "2024-01-03", dag::run_type::backfill));
  CHECK(logical_dates(dag::due_runs(tt, true, 16, runs, at("2024-01-05"))) ==
        strings{"2024-01-04T00:00:00+00:00"});
}

TEST_CASE("Due.ManualRunsAreNotLastAutomatedButKeepTheirDates") {
  auto tt = make("@daily", "2024-01-01");
  std::vector<dag::existing_run> runs{
      existing(tt, "2024-01-01", dag::run_type::scheduled),
      existing(tt, "2024-01-03", dag::run_type::manual),  // triggered for a schedule date
      {at("2024-01-04T12:00"), {at("2024-01-04T12:00"), at("2024-01-04T12:00")}, dag::run_type::manual}};
  CHECK(logical_dates(dag::due_runs(tt, true, 16, runs, at("2024-01-05"))) ==
        strings{"2024-01-02T00:00:00+00:00", "2024-01-04T00:00:00+00:00"});
}

TEST_CASE("Due.EndDateStopsScheduling") {
  auto tt = make("@daily", "2024-01-01", "UTC", "2024-01-02");
  CHECK(logical_dates(dag::due_runs(tt, true, 16, {}, at("2024-01-10"))) ==
        strings{"2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"});
  std::vector<dag::existing_run> runs{existing(tt, "2024-01-02", dag::run_type::scheduled)};
  CHECK(dag::due_runs(tt, true, 16, runs, at("2024-01-10")).empty());
  // Without catchup the latest interval is past end_date, so nothing new (as in Airflow).
  CHECK(dag::due_runs(tt, false, 16, {}, at("2024-01-10")).empty());
}

TEST_CASE("Due.OnceRunsOnceAfterStartDate") {
  auto tt = make("@once", "2024-01-01T12:00");
  CHECK(dag::due_runs(tt, true, 16, {}, at("2024-01-01T11:59")).empty());
  auto due = dag::due_runs(tt, false, 16, {}, at("2024-01-01T12:00"));
  REQUIRE(due.size() == 1);
  CHECK(due[0].logical_date == at("2024-01-01T12:00"));
  std::vector<dag::existing_run> done{existing(tt, "2024-01-01T12:00", dag::run_type::scheduled)};
  CHECK(dag::due_runs(tt, true, 16, done, at("2024-02-01")).empty());
  std::vector<dag::existing_run> manual{
      {at("2024-01-05"), {at("2024-01-05"), at("2024-01-05")}, dag::run_type::manual}};
  CHECK(dag::due_runs(tt, true, 16, manual, at("2024-02-01")).size() == 1);
}

TEST_CASE("Due.NoScheduleNeverDue") {
  auto tt = make("", "2024-01-01");
  CHECK(dag::due_runs(tt, true, 16, {}, at("2024-06-01")).empty());
}

TEST_CASE("Due.ContinuesAfterScheduleChange") {
  // The last run came from an older 12-hour schedule; its end aligns back onto @daily (Airflow's
  // _align_to_prev), whose date is taken, so the next new run is the following day.
  auto tt = make("@daily", "2024-01-01");
  std::vector<dag::existing_run> runs{
      {at("2024-01-01T00:00"), {at("2024-01-01T00:00"), at("2024-01-01T12:00")}, dag::run_type::scheduled}};
  auto aligned = tt.next_run(runs[0].interval);
  REQUIRE(aligned);
  CHECK(aligned->logical_date == at("2024-01-01"));
  CHECK(logical_dates(dag::due_runs(tt, true, 16, runs, at("2024-01-03"))) ==
        strings{"2024-01-02T00:00:00+00:00"});
}

TEST_CASE("Due.FromDefinition") {
  dag::definition d("example");
  d.schedule("0 6 * * *").timezone("Europe/Berlin").start_date("2024-01-01").catchup(false).max_active_runs(1);
  auto due = dag::due_runs(d, {}, at("2024-01-10T12:00"));
  REQUIRE(due.size() == 1);
  CHECK(dag::format_iso(due[0].logical_date, "Europe/Berlin") == "2024-01-09T06:00:00+01:00");
  d.catchup(true).max_active_runs(3);
  CHECK(local_dates(dag::due_runs(d, {}, at("2024-01-10T12:00")), "Europe/Berlin") ==
        strings{"2024-01-01T06:00:00+01:00", "2024-01-02T06:00:00+01:00", "2024-01-03T06:00:00+01:00"});
}

}  // namespace
