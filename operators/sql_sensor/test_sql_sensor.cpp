// The SQL sensor against a real SQLite file: pokes until the condition holds, or times out.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <dag/operators/sql_sensor.hpp>

namespace {
struct sensor_try {
  std::filesystem::path db = std::filesystem::temp_directory_path() / ("dagrun-sensor-" + std::to_string(::getpid()) + ".db");
  dag::task_context ctx;
  std::vector<std::string> logged;
  std::atomic<bool> poked{false};  // set after the first log line: the other thread reads only this
  sensor_try() {
    std::filesystem::remove(db);
    SQLite::Database d(db.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    d.exec("CREATE TABLE flags(ready INTEGER)");
    ctx.fields = {{"conn_id", "local"}, {"sql", "SELECT count(*) FROM flags WHERE ready = 1"}, {"poke_interval", "1s"}};
    const std::string uri = "sqlite://" + db.string();
    ctx.connection_lookup = [uri](std::string_view) { return std::optional(dag::parse_connection_uri("local", uri)); };
    ctx.log = [this](std::string_view l) {
      logged.emplace_back(l);
      poked = true;
    };
  }
  ~sensor_try() { std::filesystem::remove(db); }
};
}  // namespace

TEST_CASE("SqlSensor.FirstCellTruthiness") {
  using s = dag::operators::sql_sensor;
  CHECK(s::truthy("[[1]]"));
  CHECK(s::truthy("[[\"yes\",0]]"));
  CHECK(s::truthy("[[true]]"));
  CHECK_FALSE(s::truthy("[]"));
  CHECK_FALSE(s::truthy("[[0]]"));
  CHECK_FALSE(s::truthy("[[null]]"));
  CHECK_FALSE(s::truthy("[[false]]"));
  CHECK_FALSE(s::truthy("[[\"\"]]"));
}

TEST_CASE("SqlSensor.SucceedsOnceTheConditionHolds" * doctest::timeout(30)) {
  sensor_try t;
  // The flag is set once the sensor has poked and found nothing, so at least two pokes happen.
  std::jthread setter([&](std::stop_token st) {
    while (!st.stop_requested()) {
      if (t.poked) {
        SQLite::Database d(t.db.string(), SQLite::OPEN_READWRITE);
        d.exec("INSERT INTO flags VALUES (1)");
        return;
      }
      std::this_thread::yield();
    }
  });
  auto r = dag::operators::sql_sensor::run(dag::task{}, t.ctx);
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(t.logged.front() == "[dagrun] poke 1: not yet");
}

TEST_CASE("SqlSensor.TimesOut" * doctest::timeout(30)) {
  sensor_try t;
  t.ctx.fields["timeout"] = "1s";
  auto r = dag::operators::sql_sensor::run(dag::task{}, t.ctx);
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message == "sensor timeout: condition not met within 1s");
}

TEST_CASE("SqlSensor.StopsAtOnceWhenAsked" * doctest::timeout(30)) {
  sensor_try t;
  t.ctx.fields["poke_interval"] = "1h";
  std::stop_source stop;
  t.ctx.stop = stop.get_token();
  std::jthread stopper([&] {
    while (!t.poked) std::this_thread::yield();
    stop.request_stop();
  });
  auto r = dag::operators::sql_sensor::run(dag::task{}, t.ctx);
  CHECK(r.message == "stopped while waiting for the next poke");
}

TEST_CASE("SqlSensor.RescheduleModePokesOnceAndAsksToRunAgain" * doctest::timeout(30)) {
  sensor_try t;
  t.ctx.fields["mode"] = "reschedule";
  t.ctx.fields["poke_interval"] = "5m";
  auto r = dag::operators::sql_sensor::run(dag::task{}, t.ctx);
  CHECK(r.outcome == dag::try_outcome::rescheduled);
  CHECK(r.reschedule_after == std::chrono::minutes(5));
  CHECK(r.message == "rescheduled: next poke in 5m");
  CHECK(t.logged == std::vector<std::string>{"[dagrun] poke after 0s of waiting: not yet"});

  SQLite::Database(t.db.string(), SQLite::OPEN_READWRITE).exec("INSERT INTO flags VALUES (1)");
  t.ctx.waited = std::chrono::minutes(5);
  r = dag::operators::sql_sensor::run(dag::task{}, t.ctx);
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(t.logged.back() == "[dagrun] sensor condition met on poke after 5m of waiting");
}

TEST_CASE("SqlSensor.RescheduleModeCountsTheTimeoutFromTheFirstPoke" * doctest::timeout(30)) {
  sensor_try t;
  t.ctx.fields["mode"] = "reschedule";
  t.ctx.fields["poke_interval"] = "1m";
  t.ctx.fields["timeout"] = "10m";
  t.ctx.waited = std::chrono::minutes(9) + std::chrono::seconds(30);  // earlier pokes of this try
  auto r = dag::operators::sql_sensor::run(dag::task{}, t.ctx);
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message == "sensor timeout: condition not met within 10m");
}
