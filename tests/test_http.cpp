// The HTTP face over a real loopback server and client: /health against a real SQLite
// file and an injected clock, /metrics in Prometheus' text format, errors for bad requests.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <dag/core/time.hpp>
#include <dag/engine/engine.hpp>
#include <dag/http/server.hpp>
#include <dag/metrics/registry.hpp>
#include <dag/store/store.hpp>

#include <dag/operators/builtin.hpp>
#include <dag/load/check.hpp>

#include <dag/http/face.hpp>
#include <dag/http/serve.hpp>
#include "support/http_client.hpp"

using namespace std::chrono_literals;
using dag_test::http_call;
using json = nlohmann::json;

namespace {

struct fixed_clock final : dag::clock {
  dag::time_point at = dag::parse_time("2024-06-01T12:00:00Z");
  dag::time_point now() const override { return at; }
};

double unix_seconds(dag::time_point t) { return static_cast<double>(t.time_since_epoch().count()); }

// A face over a fresh SQLite file, served on a free loopback port.
struct served_face {
  std::filesystem::path dir;
  fixed_clock clock;
  dag::metrics_registry metrics;
  std::unique_ptr<dag::http_face> face;
  std::unique_ptr<dag::http_server> server;

  explicit served_face(std::string db_url = "", std::optional<std::string> token = std::nullopt) {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("dagrun-http-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(dir);
    if (db_url.empty()) {
      db_url = "sqlite:" + (dir / "dagrun.db").string();
      dag::open_store(db_url);  // created and migrated, as the daemon does before serving
    }
    dag::declare_engine_metrics(metrics);
    dag::http_face_options options;
    options.db_url = db_url;
    options.token = token;
    if (token) options.users = {{"alice", "wonderland"}};  // basic auth, beside the token
    face = std::make_unique<dag::http_face>(options, metrics, clock);
    server = std::make_unique<dag::http_server>("127.0.0.1", 0, [this](const dag::http_request& r) { return face->handle(r); },
                                                face->server_options());
  }
  ~served_face() {
    server.reset();
    std::filesystem::remove_all(dir);
  }
  dag_test::http_reply get(const std::string& target) { return http_call(server->port(), "GET", target); }
  dag_test::http_reply send(const std::string& method, const std::string& target, const json& body, const std::string& auth = "") {
    return http_call(server->port(), method, target, body.dump(), auth);
  }
  std::unique_ptr<dag::store> store() const { return dag::open_store("sqlite:" + (dir / "dagrun.db").string()); }
  // Marks task number `index` of a run failed on try 1, as the scheduler leaves it: its log file
  // holds `log_text`; with `fail_run`, the run is failed too.
  void fail_task(const std::string& run_id, std::size_t index, const std::string& log_text, const std::string& message = "",
                 bool fail_run = false) {
    const auto log = dir / ("task" + std::to_string(index) + ".log");
    std::ofstream(log) << log_text;
    auto db = store();
    dag::change_set c;
    auto tis = db->task_instances("etl", run_id);
    tis[index].state = dag::task_state::failed;
    tis[index].try_number = 1;
    tis[index].log_path = log.string();
    tis[index].message = message;
    c.task_instances.push_back({dag::task_state::none, 0, tis[index]});
    c.tries.push_back(dag::try_record_of(tis[index]));
    if (fail_run) c.runs.push_back({"etl", run_id, dag::run_state::queued, dag::run_state::failed, std::nullopt, std::nullopt});
    db->apply(c);
  }
  void load_etl() {
    dag::definition d{"etl"};
    d.schedule("@daily").start_date("2024-01-01").tags({"batch"}).description("nightly load");
    auto a = d.bash("extract", "echo hi");
    auto b = d.bash("load", "true");
    a >> b;
    REQUIRE(dag::check(d, dag::builtin_operators()).empty());
    face->set_dags({d});
  }
};

}  // namespace

TEST_CASE("Http.HealthIsHealthyWithAReachableDatabaseAndAFreshHeartbeat" * doctest::timeout(30)) {
  served_face s;
  s.metrics.set("dagrun_scheduler_heartbeat", unix_seconds(s.clock.at) - 5);
  auto r = s.get("/health");
  CHECK(r.status == 200);
  CHECK(r.content_type == "application/json");
  const auto body = json::parse(r.body);
  CHECK(body["status"] == "healthy");
  CHECK(body["metadatabase"]["status"] == "healthy");
  CHECK(body["scheduler"]["status"] == "healthy");
  CHECK(body["scheduler"]["latest_scheduler_heartbeat"] == "2024-06-01T11:59:55+00:00");
}

TEST_CASE("Http.HealthIsUnhealthyWhenTheHeartbeatIsStaleOrMissing" * doctest::timeout(30)) {
  served_face s;
  auto body = json::parse(s.get("/health").body);  // no scheduler pass yet
  CHECK(body["status"] == "unhealthy");
  CHECK(body["scheduler"]["latest_scheduler_heartbeat"].is_null());
  s.metrics.set("dagrun_scheduler_heartbeat", unix_seconds(s.clock.at) - 31);
  auto r = s.get("/health");
  CHECK(r.status == 503);
  body = json::parse(r.body);
  CHECK(body["status"] == "unhealthy");
  CHECK(body["metadatabase"]["status"] == "healthy");
  CHECK(body["scheduler"]["status"] == "unhealthy");
  // The scheduler comes back: healthy again.
  s.metrics.set("dagrun_scheduler_heartbeat", unix_seconds(s.clock.at));
  CHECK(s.get("/health").status == 200);
}

TEST_CASE("Http.HealthIsUnhealthyWhenTheDatabaseCannotBeReached" * doctest::timeout(30)) {
  served_face s("sqlite:/nonexistent-dagrun-dir/sub/dagrun.db");
  s.metrics.set("dagrun_scheduler_heartbeat", unix_seconds(s.clock.at));
  auto r = s.get("/health");
  CHECK(r.status == 503);
  const auto body = json::parse(r.body);
  CHECK(body["metadatabase"]["status"] == "unhealthy");
  CHECK(body["scheduler"]["status"] == "healthy");
}

TEST_CASE("Http.MetricsArePrometheusTextAndCountRequests" * doctest::timeout(30)) {
  served_face s;
  s.metrics.set("dagrun_scheduler_heartbeat", unix_seconds(s.clock.at));
  CHECK(s.get("/health").status == 200);
  CHECK(s.get("/nope").status == 404);
  auto r = s.get("/metrics");
  CHECK(r.status == 200);
  CHECK(r.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(r.body.find("# TYPE dagrun_scheduler_heartbeat gauge\ndagrun_scheduler_heartbeat 1717243200\n") != std::string::npos);
  CHECK(r.body.find("http_requests_total{method=\"GET\",status_code=\"200\"} 1\n") != std::string::npos);
  CHECK(r.body.find("http_requests_total{method=\"GET\",status_code=\"404\"} 1\n") != std::string::npos);
  CHECK(r.body.find("# TYPE http_request_duration_seconds histogram\n") != std::string::npos);
  CHECK(r.body.find("http_request_duration_seconds_count 2\n") != std::string::npos);
  CHECK(r.body.find("dagrun_import_errors 0\n") != std::string::npos);
  CHECK(r.body.find("# TYPE dagrun_task_instance_finished_total counter\n") != std::string::npos);
}

TEST_CASE("Http.BadRequestsGetClearErrors" * doctest::timeout(30)) {
  served_face s;
  auto r = http_call(s.server->port(), "POST", "/health");
  CHECK(r.status == 405);
  CHECK(json::parse(r.body)["detail"] == "/health only answers GET");
  r = s.get("/api/v0/whatever");
  CHECK(r.status == 404);
  CHECK(json::parse(r.body)["detail"] == "no such endpoint: /api/v0/whatever");
  const std::string reply = dag_test::raw_exchange(s.server->port(), "NOT HTTP AT ALL\r\n\r\n");
  CHECK(reply.starts_with("HTTP/1.1 400"));
}

TEST_CASE("Http.ListenAddressesAreCheckedAndLoopbackIsKnown") {
  CHECK(dag::parse_listen_address("127.0.0.1:8080", "--listen") == std::pair<std::string, unsigned short>{"127.0.0.1", 8080});
  CHECK(dag::parse_listen_address("[::1]:0", "--listen") == std::pair<std::string, unsigned short>{"::1", 0});
  CHECK_THROWS_WITH_AS(dag::parse_listen_address("8080", "--listen"),
                       "--listen: expected HOST:PORT (e.g. 127.0.0.1:8080), got '8080'", dag::usage_error);
  CHECK_THROWS_WITH_AS(dag::parse_listen_address("h:99999", "--listen"), "--listen: port 99999 is out of range (0-65535)",
                       dag::usage_error);
  CHECK(dag::is_loopback_address("127.0.0.1"));
  CHECK(dag::is_loopback_address("localhost"));
  CHECK(dag::is_loopback_address("::1"));
  CHECK_FALSE(dag::is_loopback_address("0.0.0.0"));
  CHECK_FALSE(dag::is_loopback_address("10.1.2.3"));
}

TEST_CASE("Http.ServerRefusesAnAddressInUseNamingIt") {
  dag::http_server first("127.0.0.1", 0, [](const dag::http_request&) { return dag::http_response{}; });
  const std::string where = "127.0.0.1:" + std::to_string(first.port());
  try {
    dag::http_server second("127.0.0.1", first.port(), [](const dag::http_request&) { return dag::http_response{}; });
    FAIL("a second server listened on " << where);
  } catch (const dag::error& e) {
    CHECK(std::string(e.what()).starts_with("cannot listen on " + where + ": "));
  }
}

TEST_CASE("Metrics.HistogramsAreCumulativeAndLabelsEscaped") {
  dag::metrics_registry m;
  m.histogram("d_seconds", "durations", {"dag_id"}, {0.1, 1});
  m.observe("d_seconds", 0.05, {"a\"b"});
  m.observe("d_seconds", 0.5, {"a\"b"});
  m.observe("d_seconds", 5, {"a\"b"});
  m.counter("c_total", "things");
  m.add("c_total");
  m.add("c_total", {}, 2);
  m.add("undeclared_total");  // ignored, not a crash
  m.gauge("t_seconds", "a time");
  m.set("t_seconds", 1717243200.25);
  const std::string text = m.text();
  CHECK(text ==
        "# HELP c_total things\n# TYPE c_total counter\nc_total 3\n"
        "# HELP d_seconds durations\n# TYPE d_seconds histogram\n"
        "d_seconds_bucket{dag_id=\"a\\\"b\",le=\"0.1\"} 1\n"
        "d_seconds_bucket{dag_id=\"a\\\"b\",le=\"1\"} 2\n"
        "d_seconds_bucket{dag_id=\"a\\\"b\",le=\"+Inf\"} 3\n"
        "d_seconds_sum{dag_id=\"a\\\"b\"} 5.55\n"
        "d_seconds_count{dag_id=\"a\\\"b\"} 3\n"
        "# HELP t_seconds a time\n# TYPE t_seconds gauge\nt_seconds 1717243200.25\n");
}

TEST_CASE("Http.ApiTriggersAndListsRunsAndTaskInstances" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  auto dags = json::parse(s.get("/api/v1/dags").body);
  REQUIRE(dags["total_entries"] == 1);
  CHECK(dags["dags"][0]["dag_id"] == "etl");
  CHECK(dags["dags"][0]["is_paused"] == false);
  CHECK(dags["dags"][0]["description"] == "nightly load");
  CHECK(dags["dags"][0]["schedule_interval"] == json{{"__type", "CronExpression"}, {"value", "@daily"}});
  CHECK(dags["dags"][0]["tags"] == json::array({{{"name", "batch"}}}));

  auto r = s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-01T00:00:00Z"}, {"conf", {{"k", 1}}}});
  CHECK(r.status == 200);
  auto run = json::parse(r.body);
  CHECK(run["dag_run_id"] == "manual__2024-01-01T00:00:00+00:00");
  CHECK(run["state"] == "queued");
  CHECK(run["run_type"] == "manual");
  CHECK(run["conf"] == json{{"k", 1}});
  // Airflow's infer_manual_data_interval: a manual run at a fire time covers the interval ending there.
  CHECK(run["data_interval_start"] == "2023-12-31T00:00:00+00:00");
  CHECK(run["data_interval_end"] == "2024-01-01T00:00:00+00:00");
  r = s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-01T00:00:00Z"}});
  CHECK(r.status == 409);

  auto runs = json::parse(s.get("/api/v1/dags/etl/dagRuns").body);
  CHECK(runs["total_entries"] == 1);
  // Run ids travel percent-encoded (`+` and `:`).
  auto one = s.get("/api/v1/dags/etl/dagRuns/manual__2024-01-01T00%3A00%3A00%2B00%3A00");
  CHECK(one.status == 200);
  auto tis = json::parse(s.get("/api/v1/dags/etl/dagRuns/manual__2024-01-01T00%3A00%3A00%2B00%3A00/taskInstances").body);
  REQUIRE(tis["total_entries"] == 2);
  CHECK(tis["task_instances"][0]["task_id"] == "extract");
  CHECK(tis["task_instances"][0]["state"].is_null());
  CHECK(tis["task_instances"][0]["try_number"] == 0);

  // Airflow's paging: limit and offset, total_entries before paging.
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-02T00:00:00Z"}}).status == 200);
  auto page = json::parse(s.get("/api/v1/dags/etl/dagRuns?limit=1&offset=1").body);
  CHECK(page["total_entries"] == 2);
  REQUIRE(page["dag_runs"].size() == 1);
  CHECK(page["dag_runs"][0]["dag_run_id"] == "manual__2024-01-01T00:00:00+00:00");  // newest first
  // As Airflow: a limit beyond the maximum page size is clamped to it, and 0 means the default.
  CHECK(json::parse(s.get("/api/v1/dags/etl/dagRuns?limit=1000").body)["dag_runs"].size() == 2);
  CHECK(json::parse(s.get("/api/v1/dags/etl/dagRuns?limit=0").body)["dag_runs"].size() == 2);
  r = s.get("/api/v1/dags?limit=-1");
  CHECK(r.status == 400);
  CHECK(r.content_type == "application/problem+json");
  CHECK(json::parse(r.body)["detail"] == "limit: expected a whole number, got '-1'");
  CHECK(json::parse(r.body)["instance"] == "/api/v1/dags");
  r = s.get("/api/v1/dags?colour=red");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"].get<std::string>().starts_with("unknown query parameter 'colour'"));
  CHECK(s.get("/api/v1/dags?offset=x").status == 400);
  CHECK(s.get("/api/v1/dags/nope").status == 404);
  CHECK(s.get("/api/v1/dags/etl/dagRuns/nope").status == 404);
  r = s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "yesterday"}});
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"].get<std::string>().starts_with("logical_date: "));
  r = http_call(s.server->port(), "POST", "/api/v1/dags/etl/dagRuns", "[1, 2]");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"] == "the request body must be a JSON object");

  // The caller's run id, as Airflow's: two runs of one logical date under ids of their own.
  for (const std::string id : {"deploy-1234", "deploy-1235"}) {
    r = s.send("POST", "/api/v1/dags/etl/dagRuns", {{"dag_run_id", id}, {"logical_date", "2024-03-01T00:00:00Z"}});
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(json::parse(r.body)["dag_run_id"] == id);
    CHECK(json::parse(r.body)["run_type"] == "manual");
    const auto got = s.get("/api/v1/dags/etl/dagRuns/" + id);
    CHECK(got.status == 200);
    CHECK(json::parse(got.body)["logical_date"] == "2024-03-01T00:00:00+00:00");
  }
  CHECK(s.store()->task_instances("etl", "deploy-1234").size() == 2);
  CHECK(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"dag_run_id", "deploy-1234"}}).status == 409);
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "two words", "scheduled__2024-01-01T00:00:00+00:00", "~", std::string(249, 'x')}) {
    r = s.send("POST", "/api/v1/dags/etl/dagRuns", {{"dag_run_id", bad}});
    CHECK_MESSAGE(r.status == 400, bad);
    CHECK(json::parse(r.body)["detail"].get<std::string>().starts_with("dag_run_id: "));
  }
  CHECK(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"dag_run_id", 7}}).status == 400);
  CHECK(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"dag_run_id", std::string(248, 'x')}}).status == 200);  // the longest

  // dagStats counts each state's runs (every one queued here).
  const json stats = json::parse(s.get("/api/v1/dagStats?dag_ids=etl").body);
  REQUIRE(stats["total_entries"] == 1);
  std::map<std::string, int> counts;
  for (const auto& st : stats["dags"][0]["stats"]) counts[st["state"].get<std::string>()] = st["count"].get<int>();
  CHECK(counts == std::map<std::string, int>{{"queued", 5}, {"running", 0}, {"success", 0}, {"failed", 0}});
  CHECK(json::parse(s.get("/api/v1/dags/etl/dagRuns").body)["total_entries"] == 5);
}

// Each listing's filters, order and page as the database applies them: what each parameter does to
// the answer, not only that it is accepted.
TEST_CASE("Http.ApiListingsFilterOrderPageAndCountTaskInstancesRunsXComsAndEvents" * doctest::timeout(30)) {
  served_face s;
  dag::definition etl{"etl"};
  etl.schedule("@daily").start_date("2024-01-01");
  auto extract = etl.bash("extract", "echo hi");
  auto load = etl.bash("load", "true");
  extract >> load;
  dag::definition maps{"maps"};
  maps.schedule("@daily").start_date("2024-01-01");
  maps.bash("fan", "unused").expand("bash_command", {"echo 0", "echo 1", "echo 2"});
  REQUIRE(dag::check(etl, dag::builtin_operators()).empty());
  REQUIRE(dag::check(maps, dag::builtin_operators()).empty());
  s.face->set_dags({etl, maps});
  for (const char* day : {"2024-01-01", "2024-01-02", "2024-01-03"})
    REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", std::string(day) + "T00:00:00Z"}}).status == 200);
  REQUIRE(s.send("POST", "/api/v1/dags/maps/dagRuns", {{"logical_date", "2024-01-01T00:00:00Z"}}).status == 200);
  const std::string day1 = "manual__2024-01-01T00:00:00+00:00", day2 = "manual__2024-01-02T00:00:00+00:00";
  {
    // Day 1: extract succeeded in 10 s, load failed after 30 s; day 2: extract runs. The mapped
    // task's instances 0-2 with states success, failed, success; XComs a, b, c of day 1's extract.
    auto db = s.store();
    dag::change_set c;
    const auto set = [&](const std::string& dag_id, const std::string& run_id, const std::string& task, int map_index,
                         dag::task_state state, std::optional<int> seconds) {
      dag::task_instance_record ti;
      ti.dag_id = dag_id;
      ti.run_id = run_id;
      ti.task_id = task;
      ti.map_index = map_index;
      ti.state = state;
      ti.try_number = 1;
      ti.start_date = dag::timestamp(dag::parse_time("2024-01-05T00:00:00Z"));
      if (seconds) ti.end_date = *ti.start_date + std::chrono::seconds(*seconds);
      c.task_instances.push_back({dag::task_state::none, 0, ti});
    };
    set("etl", day1, "extract", -1, dag::task_state::success, 10);
    set("etl", day1, "load", -1, dag::task_state::failed, 30);
    c.task_instances.back().record.pool = "warehouse";
    set("etl", day2, "extract", -1, dag::task_state::running, std::nullopt);
    dag::task_instance_record unexpanded;
    unexpanded.dag_id = "maps";
    unexpanded.run_id = day1;
    unexpanded.task_id = "fan";
    c.task_instance_deletes = {unexpanded};
    for (int i = 0; i < 3; ++i) set("maps", day1, "fan", i, i == 1 ? dag::task_state::failed : dag::task_state::success, 5 * (i + 1));
    for (const char* key : {"c", "a", "b"}) c.xcoms.push_back({"etl", day1, "extract", key, std::string("value ") + key});
    c.xcoms.push_back({"etl", day2, "load", "d", "value d"});
    c.xcoms.push_back({"maps", day1, "fan", "return_value", "\"1\"", 1});
    REQUIRE(db->apply(c).task_instances_updated == std::vector<bool>(6, true));
  }
  const auto get = [&](const std::string& target) {
    const auto r = s.get("/api/v1" + target);
    INFO(target << ": " << r.body);
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  };
  const auto ids = [](const json& page, const std::string& key, const std::vector<std::string>& fields) {
    std::vector<std::string> out;
    for (const auto& x : page[key]) {
      std::string id;
      for (const auto& f : fields) id += (id.empty() ? "" : "@") + (x[f].is_string() ? x[f].get<std::string>() : x[f].dump());
      out.push_back(id);
    }
    return out;
  };
  const auto tis = [&](const json& page) { return ids(page, "task_instances", {"task_id", "execution_date"}); };
  const auto in_path = [](std::string id) {  // a run id percent-encoded, as it travels in a path
    for (auto at = id.find_first_of(":+"); at != std::string::npos; at = id.find_first_of(":+", at))
      id.replace(at, 1, id[at] == ':' ? "%3A" : "%2B");
    return id;
  };
  const std::string d1 = "2024-01-01T00:00:00+00:00", d2 = "2024-01-02T00:00:00+00:00", d3 = "2024-01-03T00:00:00+00:00";

  // Task instances of every run of a DAG: filtered by state, duration and dates, counted before paging.
  auto page = get("/dags/etl/dagRuns/~/taskInstances");
  CHECK(page["total_entries"] == 6);
  CHECK(tis(page) == std::vector<std::string>{"extract@" + d3, "load@" + d3, "extract@" + d2, "load@" + d2, "extract@" + d1, "load@" + d1});
  page = get("/dags/etl/dagRuns/~/taskInstances?state=failed&state=running");
  CHECK(tis(page) == std::vector<std::string>{"extract@" + d2, "load@" + d1});
  CHECK(page["total_entries"] == 2);
  CHECK(tis(get("/dags/etl/dagRuns/~/taskInstances?duration_gte=20")) == std::vector<std::string>{"load@" + d1});
  CHECK(tis(get("/dags/etl/dagRuns/~/taskInstances?duration_lte=10.5")) == std::vector<std::string>{"extract@" + d1});
  CHECK(get("/dags/etl/dagRuns/~/taskInstances?execution_date_gte=2024-01-02T00:00:00Z")["total_entries"] == 4);
  CHECK(get("/dags/etl/dagRuns/~/taskInstances?execution_date_lte=2024-01-01T00:00:00Z")["total_entries"] == 2);
  // An offset's `+` sent unencoded reads as a space; taken for the `+`, as Airflow does.
  CHECK(get("/dags/etl/dagRuns/~/taskInstances?execution_date_gte=2024-01-02T01:00:00+01:00")["total_entries"] == 4);
  CHECK(get("/dags/etl/dagRuns/~/taskInstances?execution_date_lte=2024-01-01T01:00:00+0100")["total_entries"] == 2);
  CHECK(get("/dags/etl/dagRuns/~/taskInstances?start_date_gte=2024-01-05T00:00:00Z")["total_entries"] == 3);
  CHECK(tis(get("/dags/etl/dagRuns/~/taskInstances?pool=warehouse")) == std::vector<std::string>{"load@" + d1});
  CHECK(tis(get("/dags/etl/dagRuns/~/taskInstances?end_date_gte=2024-01-05T00:00:20Z")) == std::vector<std::string>{"load@" + d1});
  // Ordered (no duration first, last descending) and paged.
  page = get("/dags/etl/dagRuns/~/taskInstances?order_by=-duration&limit=2");
  CHECK(tis(page) == std::vector<std::string>{"load@" + d1, "extract@" + d1});
  CHECK(page["total_entries"] == 6);
  CHECK(tis(get("/dags/etl/dagRuns/~/taskInstances?order_by=execution_date&offset=4")) ==
        std::vector<std::string>{"extract@" + d3, "load@" + d3});
  CHECK(tis(get("/dags/etl/dagRuns/" + in_path(day1) + "/taskInstances?order_by=-task_id")) ==
        std::vector<std::string>{"load@" + d1, "extract@" + d1});
  auto r = s.get("/api/v1/dags/etl/dagRuns/~/taskInstances?order_by=colour");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"].get<std::string>().starts_with("order_by: cannot order by 'colour'"));
  CHECK(s.get("/api/v1/dags/etl/dagRuns/~/taskInstances?state=sleepy").status == 400);
  // Airflow's states that no instance here has (no deferrable operators) are known, and match nothing.
  CHECK(tis(get("/dags/etl/dagRuns/~/taskInstances?state=running&state=deferred")) == std::vector<std::string>{"extract@" + d2});
  page = get("/dags/etl/dagRuns/~/taskInstances?state=deferred&state=restarting");
  CHECK(page["total_entries"] == 0);
  CHECK(page["task_instances"].empty());
  CHECK(get("/dags/maps/dagRuns/" + in_path(day1) + "/taskInstances/fan/listMapped?state=deferred")["total_entries"] == 0);
  CHECK(s.get("/api/v1/dags/etl/dagRuns/~/taskInstances?duration_gte=nan").status == 400);
  // Across DAGs.
  CHECK(get("/dags/~/dagRuns/~/taskInstances")["total_entries"] == 9);
  CHECK(get("/dags/~/dagRuns/~/taskInstances?state=failed")["total_entries"] == 2);

  // The batch listing: the same filters in a body, with its own paging fields.
  const auto batch = [&](const json& body) {
    const auto reply = s.send("POST", "/api/v1/dags/~/dagRuns/~/taskInstances/list", body);
    INFO(body.dump() << ": " << reply.body);
    REQUIRE(reply.status == 200);
    return json::parse(reply.body);
  };
  page = batch({{"dag_ids", {"etl"}}, {"task_ids", {"load"}}, {"order_by", "execution_date"}, {"page_limit", 2}});
  CHECK(tis(page) == std::vector<std::string>{"load@" + d1, "load@" + d2});
  CHECK(page["total_entries"] == 3);
  CHECK(tis(batch({{"dag_ids", {"etl"}}, {"task_ids", {"load"}}, {"order_by", "execution_date"}, {"page_offset", 2}})) ==
        std::vector<std::string>{"load@" + d3});
  CHECK(tis(batch({{"state", {"running"}}})) == std::vector<std::string>{"extract@" + d2});
  CHECK(tis(batch({{"state", {"running", "deferred"}}})) == std::vector<std::string>{"extract@" + d2});
  CHECK(batch({{"state", {"deferred"}}})["total_entries"] == 0);
  // null, Airflow's "no state": dagrun's `none` (etl's day 2 load and day 3's two, not started).
  CHECK(batch({{"dag_ids", {"etl"}}, {"state", json::array({nullptr})}})["total_entries"] == 3);
  CHECK(s.send("POST", "/api/v1/dags/~/dagRuns/~/taskInstances/list", {{"state", json::array({1})}}).status == 400);
  CHECK(tis(batch({{"dag_run_ids", {day2}}, {"dag_ids", {"etl"}}})) == std::vector<std::string>{"extract@" + d2, "load@" + d2});
  CHECK(batch({{"duration_gte", 10}, {"duration_lte", 15}})["total_entries"] == 3);  // extract, fan 1 and 2
  CHECK(batch({{"execution_date_gte", "2024-01-03T00:00:00Z"}})["total_entries"] == 2);
  CHECK(batch({{"pool", {"warehouse", "elsewhere"}}})["total_entries"] == 1);
  CHECK(s.send("POST", "/api/v1/dags/~/dagRuns/~/taskInstances/list", {{"order_by", "colour"}}).status == 400);

  // A mapped task's instances: by map index, filtered, ordered and paged.
  const std::string fan = "/dags/maps/dagRuns/" + in_path(day1) + "/taskInstances/fan/listMapped";
  const auto indexes = [&](const json& p) { return ids(p, "task_instances", {"map_index"}); };
  CHECK(indexes(get(fan)) == std::vector<std::string>{"0", "1", "2"});
  CHECK(indexes(get(fan + "?state=success")) == std::vector<std::string>{"0", "2"});
  page = get(fan + "?order_by=-duration&limit=1&offset=1");
  CHECK(indexes(page) == std::vector<std::string>{"1"});
  CHECK(page["total_entries"] == 3);
  CHECK(indexes(get(fan + "?duration_gte=10")) == std::vector<std::string>{"1", "2"});
  CHECK(s.get("/api/v1" + fan + "?order_by=task_id").status == 400);  // not one of listMapped's fields

  // Runs: ordered by the database, then paged.
  const auto run_ids = [&](const json& p) { return ids(p, "dag_runs", {"dag_run_id"}); };
  page = get("/dags/etl/dagRuns?order_by=execution_date&limit=1&offset=1");
  CHECK(run_ids(page) == std::vector<std::string>{day2});
  CHECK(page["total_entries"] == 3);
  CHECK(run_ids(get("/dags/~/dagRuns?order_by=-dag_id&limit=1")) == std::vector<std::string>{day1});  // maps' run
  const auto listed_runs = s.send("POST", "/api/v1/dags/~/dagRuns/list", {{"order_by", "-dag_run_id"}, {"page_offset", 1}, {"dag_ids", {"etl"}}});
  CHECK(run_ids(json::parse(listed_runs.body)) == std::vector<std::string>{day2, day1});
  // A list filter is bounded (at 1,000 values).
  json many = json::array();
  for (int i = 0; i < 1001; ++i) many.push_back("dag" + std::to_string(i));
  r = s.send("POST", "/api/v1/dags/~/dagRuns/list", {{"dag_ids", many}});
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"] == "dag_ids: at most 1000 values");
  // Lists of any length select what they name (the stores pad them to powers of two with their
  // last value), with the DAG named first or last.
  const auto etl_runs = get("/dags/etl/dagRuns")["total_entries"];
  for (const std::size_t n : {1u, 2u, 3u, 5u, 999u}) {
    CAPTURE(n);
    for (const bool etl_first : {true, false}) {
      json named = json::array();
      for (std::size_t i = 1; i < n; ++i) named.push_back("dag" + std::to_string(i));
      named.insert(etl_first ? named.begin() : named.end(), "etl");
      r = s.send("POST", "/api/v1/dags/~/dagRuns/list", {{"dag_ids", named}});
      REQUIRE(r.status == 200);
      CHECK(json::parse(r.body)["total_entries"] == etl_runs);
    }
  }
  std::string states = "success";
  for (int i = 0; i < 1000; ++i) states += ",failed";
  CHECK(s.get("/api/v1/dags/~/dagRuns?state=" + states).status == 400);
  CHECK(s.get("/api/v1/dags/etl/dagRuns?order_by=conf").status == 400);
  // Airflow's sparse fieldsets: only the fields asked for.
  CHECK(get("/dags/etl/dagRuns?fields=dag_run_id&fields=state&limit=1")["dag_runs"][0] ==
        json{{"dag_run_id", "manual__2024-01-03T00:00:00+00:00"}, {"state", "queued"}});
  CHECK(get("/dags/etl/dagRuns/" + in_path(day1) + "?fields=run_type") == json{{"run_type", "manual"}});
  r = s.get("/api/v1/dags/etl/dagRuns?fields=colour");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"] == "fields: a DAG run has no field 'colour'");

  // XCom entries of a task instance: by key, paged, counted, filtered by key.
  const std::string xcoms = "/dags/etl/dagRuns/" + in_path(day1) + "/taskInstances/extract/xcomEntries";
  page = get(xcoms + "?limit=2&offset=1");
  CHECK(ids(page, "xcom_entries", {"key"}) == std::vector<std::string>{"b", "c"});
  CHECK(page["total_entries"] == 3);
  page = get(xcoms + "?xcom_key=a");
  CHECK(ids(page, "xcom_entries", {"key"}) == std::vector<std::string>{"a"});
  CHECK(page["total_entries"] == 1);
  CHECK(get(xcoms + "/b")["value"] == "value b");
  // `~` for any DAG, run or task, as Airflow's: in DAG, run, task, key and map index order.
  const std::vector<std::string> fields{"dag_id", "dag_run_id", "task_id", "key", "map_index"};
  page = get("/dags/~/dagRuns/~/taskInstances/~/xcomEntries");
  CHECK(ids(page, "xcom_entries", fields) ==
        std::vector<std::string>{"etl@" + day1 + "@extract@a@-1", "etl@" + day1 + "@extract@b@-1", "etl@" + day1 + "@extract@c@-1",
                                 "etl@" + day2 + "@load@d@-1", "maps@" + day1 + "@fan@return_value@1"});
  CHECK(page["xcom_entries"][3]["execution_date"] == d2);
  CHECK(get("/dags/etl/dagRuns/~/taskInstances/~/xcomEntries")["total_entries"] == 4);
  CHECK(ids(get("/dags/etl/dagRuns/" + in_path(day2) + "/taskInstances/~/xcomEntries"), "xcom_entries", {"key"}) ==
        std::vector<std::string>{"d"});
  CHECK(ids(get("/dags/~/dagRuns/~/taskInstances/~/xcomEntries?xcom_key=return_value&map_index=1"), "xcom_entries", {"dag_id"}) ==
        std::vector<std::string>{"maps"});
  page = get("/dags/~/dagRuns/~/taskInstances/extract/xcomEntries?limit=1&offset=2");
  CHECK(ids(page, "xcom_entries", {"key"}) == std::vector<std::string>{"c"});
  CHECK(page["total_entries"] == 3);
  CHECK(s.get("/api/v1/dags/~/dagRuns/" + in_path(day1) + "/taskInstances/~/xcomEntries").status == 400);
  CHECK(s.get("/api/v1/dags/nope/dagRuns/~/taskInstances/~/xcomEntries").status == 404);

  // The event log: included and excluded events, ordered, paged and counted.
  REQUIRE(s.send("PATCH", "/api/v1/dags/etl", {{"is_paused", true}}).status == 200);
  page = get("/eventLogs?included_events=trigger&order_by=event_log_id&limit=2&offset=1");
  CHECK(ids(page, "event_logs", {"run_id"}) == std::vector<std::string>{day2, "manual__2024-01-03T00:00:00+00:00"});
  CHECK(page["total_entries"] == 4);
  page = get("/eventLogs?excluded_events=trigger");
  CHECK(page["total_entries"] == 1);
  CHECK(page["event_logs"][0]["dag_id"] == "etl");
  CHECK(get("/eventLogs?order_by=-dag_id&limit=1")["event_logs"][0]["dag_id"] == "maps");
  CHECK(s.get("/api/v1/eventLogs?order_by=extra").status == 400);

  // Dataset events: ordered by URI, paged and counted.
  s.store()->register_datasets({"s3://b", "s3://a"}, {});
  for (const char* uri : {"s3://a", "s3://b", "s3://a"})
    REQUIRE(s.send("POST", "/api/v1/datasets/events", {{"dataset_uri", uri}}).status == 200);
  page = get("/datasets/events?order_by=-dataset_uri&limit=2");
  CHECK(ids(page, "dataset_events", {"dataset_uri"}) == std::vector<std::string>{"s3://b", "s3://a"});
  CHECK(page["total_entries"] == 3);
  page = get("/datasets/events?order_by=dataset_id&offset=1");  // s3://b was recorded first
  CHECK(ids(page, "dataset_events", {"dataset_uri"}) == std::vector<std::string>{"s3://a", "s3://a"});
  // clearTaskInstances takes Airflow's [task id, map index] items: only that instance.
  const auto would_clear = [&](const json& task_ids) {
    const auto answer = s.send("POST", "/api/v1/dags/maps/clearTaskInstances", {{"only_failed", false}, {"task_ids", task_ids}});
    INFO(answer.body);
    REQUIRE(answer.status == 200);
    return json::parse(answer.body)["task_instances"].size();
  };
  CHECK(would_clear(json::array({json::array({"fan", 2})})) == 1);
  CHECK(would_clear(json::array({json::array({"fan", 0}), json::array({"fan", 2})})) == 2);
  CHECK(would_clear(json::array({"fan"})) == 3);
  CHECK(would_clear(json::array({json::array({"fan", 0}), "fan"})) == 3);  // named whole too: every instance
  CHECK(would_clear(json::array({json::array({"fan", 7})})) == 0);
  CHECK(s.send("POST", "/api/v1/dags/maps/clearTaskInstances", {{"task_ids", json::array({json::array({"fan", -1})})}}).status == 400);
  CHECK(s.send("POST", "/api/v1/dags/maps/clearTaskInstances", {{"task_ids", json::array({json::array({"fan"})})}}).status == 400);
}

// Airflow's setNote of one mapped instance (…/{task_id}/{map_index}/setNote) notes that instance
// only; the route without a map index names map index -1, as Airflow's does.
TEST_CASE("Http.ApiSetsTheNoteOfOneMappedInstance" * doctest::timeout(30)) {
  served_face s;
  dag::definition maps{"maps"};
  maps.schedule("@daily").start_date("2024-01-01");
  maps.bash("fan", "unused").expand("bash_command", {"echo 0", "echo 1", "echo 2"});
  maps.bash("single", "echo 1");
  REQUIRE(dag::check(maps, dag::builtin_operators()).empty());
  s.face->set_dags({maps});
  REQUIRE(s.send("POST", "/api/v1/dags/maps/dagRuns", {{"logical_date", "2024-01-01T00:00:00Z"}}).status == 200);
  const std::string run_id = "manual__2024-01-01T00:00:00+00:00";
  {
    auto db = s.store();
    dag::change_set c;
    dag::task_instance_record unexpanded;
    unexpanded.dag_id = "maps";
    unexpanded.run_id = run_id;
    unexpanded.task_id = "fan";
    c.task_instance_deletes = {unexpanded};
    for (int i = 0; i < 3; ++i) {
      dag::task_instance_record ti = unexpanded;
      ti.map_index = i;
      ti.state = dag::task_state::success;
      c.task_instances.push_back({dag::task_state::none, 0, ti});
    }
    REQUIRE(db->apply(c).task_instances_updated == std::vector<bool>(3, true));
  }
  const std::string tis = "/api/v1/dags/maps/dagRuns/manual__2024-01-01T00%3A00%3A00%2B00%3A00/taskInstances/";
  auto r = s.send("PATCH", tis + "fan/1/setNote", {{"note", "looked at 1"}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["map_index"] == 1);
  CHECK(json::parse(r.body)["note"] == "looked at 1");
  const auto notes = [&] {
    std::map<std::string, std::string> out;
    for (const auto& ti : s.store()->task_instances("maps", run_id)) out[ti.task_id + std::to_string(ti.map_index)] = ti.note;
    return out;
  };
  CHECK(notes() == std::map<std::string, std::string>{{"fan0", ""}, {"fan1", "looked at 1"}, {"fan2", ""}, {"single-1", ""}});
  CHECK(json::parse(s.get(tis + "fan/0").body)["note"].is_null());
  // Not an instance: 404, as Airflow's; the unmapped route on a mapped task names no instance either.
  CHECK(s.send("PATCH", tis + "fan/7/setNote", {{"note", "x"}}).status == 404);
  CHECK(s.send("PATCH", tis + "fan/setNote", {{"note", "x"}}).status == 404);
  CHECK(s.send("PATCH", tis + "single/0/setNote", {{"note", "x"}}).status == 404);
  CHECK(s.send("PATCH", tis + "fan/one/setNote", {{"note", "x"}}).status == 400);
  CHECK(s.send("PATCH", tis + "fan/1/setNote", {{"colour", "x"}}).status == 400);
  // The unmapped route notes an unmapped task's instance (map index -1).
  REQUIRE(s.send("PATCH", tis + "single/setNote", {{"note", "fine"}}).status == 200);
  CHECK(notes() == std::map<std::string, std::string>{{"fan0", ""}, {"fan1", "looked at 1"}, {"fan2", ""}, {"single-1", "fine"}});
  // The route is in the API's description.
  const auto doc = json::parse(s.get("/api/v1/openapi.json").body);
  CHECK(doc["paths"].contains("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/setNote"));
  // XCom keys that are words of other routes' paths are keys: the route fixed where the two
  // first differ wins.
  {
    dag::change_set c;
    for (const char* key : {"dependencies", "tries", "setNote"}) c.xcoms.push_back({"maps", run_id, "single", key, key});
    s.store()->apply(c);
  }
  for (const std::string key : {"dependencies", "tries", "setNote"}) {
    r = s.get(tis + "single/xcomEntries/" + key);
    INFO(key << ": " << r.body);
    CHECK(r.status == 200);
    CHECK(json::parse(r.body)["value"] == key);
  }
  // One mapped instance's dependencies, and an instance's extra links (none).
  r = s.get(tis + "fan/1/dependencies");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["dependencies"].is_array());
  CHECK(s.get(tis + "fan/7/dependencies").status == 404);
  r = s.get(tis + "single/links");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body) == json::object());
  CHECK(s.get(tis + "nope/links").status == 404);
  CHECK(doc["paths"].contains("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/dependencies"));
  CHECK(doc["paths"].contains("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/links"));
  // A task says whether it is mapped (Airflow's Task.is_mapped).
  CHECK(json::parse(s.get("/api/v1/dags/maps/tasks/fan").body)["is_mapped"] == true);
  CHECK(json::parse(s.get("/api/v1/dags/maps/tasks/single").body)["is_mapped"] == false);
  // A dry run of clearing the run lists each instance it would clear once: the three of `fan`
  // (`single`, never run, has nothing to clear).
  r = s.send("POST", "/api/v1/dags/maps/dagRuns/manual__2024-01-01T00%3A00%3A00%2B00%3A00/clear", json::object());
  REQUIRE(r.status == 200);
  const json cleared = json::parse(r.body);
  std::multiset<std::string> listed;
  for (const auto& ti : cleared["task_instances"])
    listed.insert(ti["task_id"].get<std::string>() + std::to_string(ti["map_index"].get<int>()));
  CHECK(listed == std::multiset<std::string>{"fan0", "fan1", "fan2"});
  CHECK(cleared["total_entries"] == 3);
}

// The wall clock now as ISO-8601 to the microsecond (`…T12:00:00.123456Z`): what a client
// filtering on updated_at sends, and the store's stamps are made of.
std::string precise_now() {
  const auto t = std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
  const std::string whole = dag::format_iso(std::chrono::floor<std::chrono::seconds>(t));  // …+00:00
  const auto micros = std::to_string(1000000 + t.time_since_epoch().count() % 1000000).substr(1);
  return whole.substr(0, whole.size() - 6) + "." + micros + "Z";
}

TEST_CASE("Http.ApiFiltersAndOrdersRunsAndTaskInstancesByWhenTheyLastChanged" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  for (const char* day : {"2024-01-01", "2024-01-02"})
    REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", std::string(day) + "T00:00:00Z"}}).status == 200);
  const std::string run1 = "/api/v1/dags/etl/dagRuns/manual__2024-01-01T00%3A00%3A00%2B00%3A00";
  const std::string run2 = "/api/v1/dags/etl/dagRuns/manual__2024-01-02T00%3A00%3A00%2B00%3A00";
  const auto listed = [&](const std::string& target, const std::string& key, const std::vector<std::string>& fields) {
    const auto r = s.get(target);
    INFO(target << ": " << r.body);
    REQUIRE(r.status == 200);
    const json page = json::parse(r.body);
    std::vector<std::string> out;
    for (const auto& x : page[key]) {
      std::string id;
      for (const auto& f : fields) id += (id.empty() ? "" : "@") + x[f].get<std::string>();
      out.push_back(id);
    }
    return out;
  };
  const auto tis = [&](const std::string& query) {
    return listed("/api/v1/dags/etl/dagRuns/~/taskInstances?" + query, "task_instances", {"task_id", "execution_date"});
  };
  const auto runs = [&](const std::string& query) { return listed("/api/v1/dags/~/dagRuns?" + query, "dag_runs", {"dag_run_id"}); };
  const std::string d1 = "2024-01-01T00:00:00+00:00";

  // Marking day 1's extract changes that task instance; a note on day 2's run changes the run.
  const std::string marked = precise_now();
  CHECK(tis("updated_at_gte=" + marked).empty());
  REQUIRE(s.send("PATCH", run1 + "/taskInstances/extract", {{"new_state", "success"}, {"dry_run", false}}).status == 200);
  const std::string noted = precise_now();
  REQUIRE(s.send("PATCH", run2 + "/setNote", {{"note", "checked"}}).status == 200);
  CHECK(tis("updated_at_gte=" + marked) == std::vector<std::string>{"extract@" + d1});
  CHECK(tis("updated_at_lte=" + marked).size() == 3);  // the others, untouched since their runs were made
  CHECK(tis("updated_at_gte=" + noted).empty());
  CHECK(runs("updated_at_gte=" + noted) == std::vector<std::string>{"manual__2024-01-02T00:00:00+00:00"});
  CHECK(runs("updated_at_gte=" + marked + "&updated_at_lte=" + noted).size() <= 1);  // day 1's, if marking moved it
  CHECK(listed(run1 + "/taskInstances?updated_at_gte=" + marked, "task_instances", {"task_id"}) == std::vector<std::string>{"extract"});
  // Ordered by it, newest change first.
  CHECK(tis("order_by=-updated_at&limit=1") == std::vector<std::string>{"extract@" + d1});
  CHECK(runs("order_by=-updated_at&limit=1") == std::vector<std::string>{"manual__2024-01-02T00:00:00+00:00"});

  // A bad time is Airflow's 400 problem naming the parameter; Airflow's batch forms have no such field.
  auto r = s.get("/api/v1/dags/~/dagRuns?updated_at_gte=yesterday");
  CHECK(r.status == 400);
  CHECK(r.content_type == "application/problem+json");
  CHECK(json::parse(r.body)["detail"].get<std::string>().starts_with("updated_at_gte: invalid time 'yesterday'"));
  r = s.get("/api/v1/dags/etl/dagRuns/~/taskInstances?updated_at_lte=2024-13-01");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"].get<std::string>().starts_with("updated_at_lte: "));
  CHECK(s.send("POST", "/api/v1/dags/~/dagRuns/list", {{"updated_at_gte", marked}}).status == 400);
}

TEST_CASE("Http.ApiFiltersTaskInstancesByTheQueueAndExecutorOfTheirLatestTry" * doctest::timeout(30)) {
  served_face s;
  dag::definition d{"etl"};
  d.schedule("@daily").start_date("2024-01-01");
  d.bash("extract", "echo hi").queue("io");
  d.bash("load", "true");
  REQUIRE(dag::check(d, dag::builtin_operators()).empty());
  s.face->set_dags({d});
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-01T00:00:00Z"}}).status == 200);
  const std::string run_id = "manual__2024-01-01T00:00:00+00:00";
  {
    // extract's try ran on the queue executor, load's on the local one, as the engine records them.
    auto db = s.store();
    dag::change_set c;
    auto tis = db->task_instances("etl", run_id);
    for (auto& ti : tis) {
      ti.state = dag::task_state::running;
      ti.try_number = 1;
      ti.queue = ti.task_id == "extract" ? "io" : "default";
      ti.executor = ti.task_id == "extract" ? "QueueExecutor" : "LocalExecutor";
      c.task_instances.push_back({dag::task_state::none, 0, ti});
    }
    REQUIRE(db->apply(c).task_instances_updated == std::vector<bool>(2, true));
  }
  const auto tasks = [&](const std::string& query) {
    const auto r = s.get("/api/v1/dags/~/dagRuns/~/taskInstances?" + query);
    INFO(query << ": " << r.body);
    REQUIRE(r.status == 200);
    std::vector<std::string> out;
    const json page = json::parse(r.body);
    for (const auto& ti : page["task_instances"]) out.push_back(ti["task_id"].get<std::string>() + "@" + ti["queue"].get<std::string>() + "@" + ti["executor"].get<std::string>());
    return out;
  };
  CHECK(tasks("queue=io") == std::vector<std::string>{"extract@io@QueueExecutor"});
  CHECK(tasks("executor=LocalExecutor") == std::vector<std::string>{"load@default@LocalExecutor"});
  CHECK(tasks("executor=LocalExecutor,QueueExecutor&order_by=-executor") ==
        std::vector<std::string>{"extract@io@QueueExecutor", "load@default@LocalExecutor"});
  CHECK(tasks("queue=io&executor=LocalExecutor").empty());
  CHECK(tasks("pool=default_pool&queue=default") == std::vector<std::string>{"load@default@LocalExecutor"});
  const auto batch = s.send("POST", "/api/v1/dags/~/dagRuns/~/taskInstances/list", {{"queue", {"io"}}, {"executor", {"QueueExecutor"}}});
  REQUIRE(batch.status == 200);
  CHECK(json::parse(batch.body)["total_entries"] == 1);
  CHECK(s.get("/api/v1/dags/etl/dagRuns/manual__2024-01-01T00%3A00%3A00%2B00%3A00/taskInstances/extract/listMapped?queue=io").status == 200);
  // A list filter holds at most 1,000 values; a batch's must be a list of strings.
  std::string many = "q";
  for (int i = 0; i < 1000; ++i) many += ",q";
  auto r = s.get("/api/v1/dags/~/dagRuns/~/taskInstances?executor=" + many);
  CHECK(r.status == 400);
  CHECK(r.content_type == "application/problem+json");
  CHECK(json::parse(r.body)["detail"] == "executor: at most 1000 values");
  r = s.send("POST", "/api/v1/dags/~/dagRuns/~/taskInstances/list", {{"queue", "io"}});
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"] == "queue: expected a list of strings");
}

TEST_CASE("Http.ApiEventLogEntriesAboutATaskInstanceCarryItsMapIndexAndTryAndAreFilteredByThem" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-02T00:00:00Z"}}).status == 200);
  const std::string run_id = "manual__2024-01-02T00:00:00+00:00";
  s.fail_task(run_id, 0, "line one\n");  // extract failed on try 1
  const std::string run = "/api/v1/dags/etl/dagRuns/manual__2024-01-02T00%3A00%3A00%2B00%3A00";
  REQUIRE(s.send("PATCH", run + "/taskInstances/extract", {{"new_state", "success"}, {"dry_run", false}}).status == 200);
  REQUIRE(s.send("PATCH", run + "/taskInstances/load/setNote", {{"note", "waits for extract"}}).status == 200);
  const auto events = [&](const std::string& query) {
    const auto r = s.get("/api/v1/eventLogs?" + query);
    INFO(query << ": " << r.body);
    REQUIRE(r.status == 200);
    std::vector<std::string> out;
    const json page = json::parse(r.body);
    for (const auto& e : page["event_logs"])
      out.push_back(e["event"].get<std::string>() + "@" + e["map_index"].dump() + "@" + e["try_number"].dump());
    return out;
  };
  CHECK(events("") == std::vector<std::string>{"set_task_instance_note@-1@0", "mark_success@-1@1", "trigger@null@null"});
  CHECK(events("try_number=1") == std::vector<std::string>{"mark_success@-1@1"});
  CHECK(events("map_index=-1") == std::vector<std::string>{"set_task_instance_note@-1@0", "mark_success@-1@1"});
  CHECK(events("map_index=-1&try_number=0&task_id=load") == std::vector<std::string>{"set_task_instance_note@-1@0"});
  CHECK(events("map_index=3").empty());
  const auto one = json::parse(s.get("/api/v1/eventLogs?event=mark_success").body)["event_logs"][0];
  const auto got = json::parse(s.get("/api/v1/eventLogs/" + one["event_log_id"].dump()).body);
  CHECK(got["map_index"] == -1);
  CHECK(got["try_number"] == 1);
  CHECK(got["task_id"] == "extract");
  // Bad values are Airflow's 400 problem naming the parameter.
  auto r = s.get("/api/v1/eventLogs?map_index=first");
  CHECK(r.status == 400);
  CHECK(r.content_type == "application/problem+json");
  CHECK(json::parse(r.body)["detail"] == "map_index: expected a whole number, got 'first'");
  r = s.get("/api/v1/eventLogs?try_number=-1");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"] == "try_number: expected a whole number, got '-1'");
}

// A DAG whose file broke or went away keeps its history readable (as Airflow's API, which reads
// its tables): its runs, task instances and logs; what changes them needs the DAG; its history
// can be deleted.
TEST_CASE("Http.ApiServesTheHistoryOfADagThatIsNoLongerLoaded" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-02T00:00:00Z"}}).status == 200);
  const std::string run_id = "manual__2024-01-02T00:00:00+00:00";
  s.fail_task(run_id, 0, "line one\n", "", true);
  s.face->set_dags(std::vector<dag::definition>{});  // the file is gone
  const std::string run = "/api/v1/dags/etl/dagRuns/manual__2024-01-02T00%3A00%3A00%2B00%3A00";
  CHECK(s.get("/api/v1/dags/etl").status == 404);
  CHECK(json::parse(s.get("/api/v1/dags/etl/dagRuns").body)["total_entries"] == 1);
  CHECK(json::parse(s.get(run).body)["state"] == "failed");
  CHECK(json::parse(s.get(run + "/taskInstances").body)["total_entries"] == 2);
  CHECK(json::parse(s.get("/api/v1/dags/etl/dagRuns/~/taskInstances").body)["total_entries"] == 2);
  CHECK(json::parse(s.get(run + "/taskInstances/extract").body)["state"] == "failed");
  CHECK(json::parse(s.get(run + "/taskInstances/extract/logs/1").body)["content"] == "line one\n");
  CHECK(s.get(run + "/taskInstances/extract/dependencies").status == 200);
  CHECK(s.get(run + "/taskInstances/nope").status == 404);
  CHECK(json::parse(s.get(run + "/taskInstances/extract/listMapped").body)["total_entries"] == 0);  // not mapped
  CHECK(s.get(run + "/taskInstances/nope/listMapped").status == 404);
  CHECK(s.send("PATCH", run + "/setNote", {{"note", "file went away"}}).status == 200);
  // Changes need the DAG.
  CHECK(s.send("PATCH", run + "/taskInstances/extract", {{"new_state", "success"}, {"dry_run", false}}).status == 404);
  CHECK(s.send("POST", run + "/clear", {{"dry_run", false}}).status == 404);
  CHECK(s.send("POST", "/api/v1/dags/etl/dagRuns", json::object()).status == 404);
  // A DAG neither loaded nor in the store is not found.
  CHECK(s.get("/api/v1/dags/nope/dagRuns").status == 404);
  CHECK(s.get("/api/v1/dags/nope/dagRuns/x").status == 404);
  // Its history can be deleted.
  CHECK(s.send("DELETE", "/api/v1/dags/etl", json::object()).status == 204);
  CHECK(s.store()->find_run("etl", run_id) == std::nullopt);
  CHECK(s.get("/api/v1/dags/etl/dagRuns").status == 404);
}

// dag_id_pattern as Airflow's ILIKE '%pattern%': any part of the id, either case, `%` and `_` as
// wildcards, `\` escaping one; a PATCH's `~` selects every DAG.
TEST_CASE("Http.ApiSelectsDagsByAPatternAsAirflowsIlike" * doctest::timeout(30)) {
  served_face s;
  std::vector<dag::definition> dags;
  for (const char* id : {"etl_daily", "Reports", "other", "etlXdaily"}) {
    dags.emplace_back(id);
    dags.back().bash("t", "true");
  }
  s.face->set_dags(dags);
  const auto listed = [&](const std::string& pattern) {
    const auto r = s.get("/api/v1/dags?dag_id_pattern=" + pattern);
    INFO(pattern << ": " << r.body);
    REQUIRE(r.status == 200);
    std::vector<std::string> out;
    const json page = json::parse(r.body);
    for (const auto& d : page["dags"]) out.push_back(d["dag_id"].get<std::string>());
    return out;
  };
  CHECK(listed("ETL") == std::vector<std::string>{"etlXdaily", "etl_daily"});
  CHECK(listed("rep") == std::vector<std::string>{"Reports"});
  CHECK(listed("e%25y") == std::vector<std::string>{"etlXdaily", "etl_daily"});  // %25: '%'
  CHECK(listed("l_d") == std::vector<std::string>{"etlXdaily", "etl_daily"});
  CHECK(listed("l%5C_d") == std::vector<std::string>{"etl_daily"});  // %5C: '\', so '_' is itself
  CHECK(listed("_th").size() == 1);
  CHECK(listed("rx").empty());
  CHECK(listed("~").empty());  // a listing's `~` is no wildcard (Airflow's get_dags)
  const auto r = s.send("PATCH", "/api/v1/dags?dag_id_pattern=~", {{"is_paused", true}});
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["total_entries"] == 4);
  CHECK(s.store()->paused_dags() == std::set<std::string>{"Reports", "etlXdaily", "etl_daily", "other"});
}

TEST_CASE("Http.ApiPausesClearsAndServesLogs" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  auto r = s.send("PATCH", "/api/v1/dags/etl", {{"is_paused", true}});
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["is_paused"] == true);
  CHECK(s.store()->paused_dags() == std::set<std::string>{"etl"});
  CHECK(s.send("PATCH", "/api/v1/dags/etl", {{"is_paused", "yes"}}).status == 400);

  // A finished run with a failed task and its log, as the scheduler leaves them.
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-02T00:00:00Z"}}).status == 200);
  const std::string run_id = "manual__2024-01-02T00:00:00+00:00";
  s.fail_task(run_id, 0, "line one\n", "", true);
  const std::string base = "/api/v1/dags/etl/dagRuns/manual__2024-01-02T00%3A00%3A00%2B00%3A00/taskInstances/extract";
  auto text = http_call(s.server->port(), "GET", base + "/logs/1");
  CHECK(json::parse(text.body)["content"] == "line one\n");
  CHECK(s.get(base + "/logs/2").status == 404);
  CHECK(s.get(base + "/logs/x").status == 400);

  // Airflow's clearTaskInstances is a dry run unless told otherwise.
  r = s.send("POST", "/api/v1/dags/etl/clearTaskInstances", {{"only_failed", true}});
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["task_instances"] ==
        json::array({{{"dag_id", "etl"}, {"dag_run_id", run_id}, {"task_id", "extract"}, {"execution_date", "2024-01-02T00:00:00+00:00"}}}));
  CHECK(s.store()->find_run("etl", run_id)->state == dag::run_state::failed);
  {
    dag::change_set c;  // an XCom of the failed try's earlier success (say, before a clear)
    c.xcoms.push_back({"etl", run_id, "extract", "return_value", "old"});
    s.store()->apply(c);
  }
  auto xcom = s.get(base + "/xcomEntries/return_value");
  CHECK(xcom.status == 200);
  CHECK(json::parse(xcom.body)["value"] == "old");
  CHECK(s.get(base + "/xcomEntries/other").status == 404);
  r = s.send("POST", "/api/v1/dags/etl/clearTaskInstances", {{"only_failed", true}, {"dry_run", false}});
  CHECK_FALSE(s.store()->xcom("etl", run_id, "extract").has_value());  // cleared with its task instance
  CHECK(json::parse(r.body)["task_instances"].size() == 1);
  CHECK(s.store()->find_run("etl", run_id)->state == dag::run_state::queued);
  CHECK(s.store()->task_instances("etl", run_id)[0].cleared_tries == 1);
  r = s.send("POST", "/api/v1/dags/etl/clearTaskInstances", {{"task_ids", {"nope"}}});
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"] == "task_ids: DAG 'etl' has no task 'nope'");
}

TEST_CASE("Http.ApiNeedsTheTokenWhenOneIsSet" * doctest::timeout(30)) {
  served_face s("", std::string("t0ken-abc"));
  s.load_etl();
  // Logs and XComs are data too: with a token, every API request needs it (as Airflow's API).
  CHECK(s.get("/api/v1/dags").status == 401);
  CHECK(http_call(s.server->port(), "GET", "/api/v1/dags", "", "Bearer t0ken-abc").status == 200);
  auto r = s.send("PATCH", "/api/v1/dags/etl", {{"is_paused", true}});
  CHECK(r.status == 401);
  CHECK(s.store()->paused_dags().empty());
  CHECK(s.send("PATCH", "/api/v1/dags/etl", {{"is_paused", true}}, "Bearer wrong").status == 401);
  CHECK(s.send("PATCH", "/api/v1/dags/etl", {{"is_paused", true}}, "Bearer t0ken-abc").status == 200);
  CHECK(s.store()->paused_dags() == std::set<std::string>{"etl"});
  // Health and metrics stay open for load balancers and Prometheus.
  CHECK(s.get("/metrics").status == 200);
}

TEST_CASE("Http.ApiTakesBasicAuthBesideTheTokenAndLogsWhoChangedWhat" * doctest::timeout(30)) {
  served_face s("", std::string("t0ken-abc"));
  s.load_etl();
  // alice:wonderland, as Airflow's basic_auth backend reads it.
  const std::string alice = "Basic YWxpY2U6d29uZGVybGFuZA==";
  CHECK(http_call(s.server->port(), "GET", "/api/v1/dags", "", alice).status == 200);
  CHECK(http_call(s.server->port(), "GET", "/api/v1/dags", "", "Basic YWxpY2U6d3Jvbmc=").status == 401);  // alice:wrong
  CHECK(http_call(s.server->port(), "GET", "/api/v1/dags", "", "Basic Ym9iOndvbmRlcmxhbmQ=").status == 401);  // bob:…
  CHECK(http_call(s.server->port(), "GET", "/api/v1/dags", "", "Basic !!!").status == 401);
  REQUIRE(s.send("PATCH", "/api/v1/dags/etl", {{"is_paused", true}}, alice).status == 200);
  REQUIRE(s.send("PATCH", "/api/v1/dags/etl", {{"is_paused", false}}, "Bearer t0ken-abc").status == 200);
  const auto events = s.store()->events({});
  REQUIRE(events.size() == 2);
  CHECK(events[0].event == "unpause");
  CHECK(events[0].owner == "token");
  CHECK(events[1].event == "pause");
  CHECK(events[1].owner == "alice");
  CHECK(events[1].dag_id == "etl");
  auto r = http_call(s.server->port(), "GET", "/api/v1/eventLogs?owner=alice", "", alice);
  CHECK(json::parse(r.body)["total_entries"] == 1);
  // The served OpenAPI document names each operation once.
  r = http_call(s.server->port(), "GET", "/api/v1/openapi.json", "", alice);
  REQUIRE(r.status == 200);
  std::set<std::string> ids;
  std::size_t operations = 0;
  const json document = json::parse(r.body);
  for (const auto& [path, methods] : document["paths"].items())
    for (const auto& [method, op] : methods.items()) {
      ++operations;
      ids.insert(op["operationId"].get<std::string>());
    }
  CHECK(operations >= 50);
  CHECK(ids.size() == operations);
}

TEST_CASE("Http.ApiHealthVersionAndTheApiDescriptionAnswerWithoutCredentials" * doctest::timeout(30)) {
  served_face s("", std::string("t0ken-abc"));
  s.load_etl();
  s.metrics.set("dagrun_scheduler_heartbeat", unix_seconds(s.clock.at));
  // What clients and probes call first answers anyone, as Airflow's (`security: []`) does …
  auto r = s.get("/api/v1/health");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["metadatabase"]["status"] == "healthy");
  r = s.get("/api/v1/version");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body).contains("version"));
  CHECK(http_call(s.server->port(), "HEAD", "/api/v1/version").status == 200);
  CHECK(s.get("/api/v1/openapi.json").status == 200);
  CHECK(s.get("/api/v1/ui/").status == 200);
  // … and nothing else does: the data, any other method on those paths, a path near them.
  CHECK(s.get("/api/v1/dags").status == 401);
  CHECK(s.get("/api/v1/dags/etl/dagRuns").status == 401);
  CHECK(s.get("/api/v1/config").status == 401);
  CHECK(s.get("/api/v1/health/x").status == 401);
  CHECK(s.send("POST", "/api/v1/health", json::object()).status == 401);
  CHECK(s.send("DELETE", "/api/v1/version", json::object()).status == 401);
  // With credentials the open paths answer the same; wrong ones do not shut them.
  CHECK(http_call(s.server->port(), "GET", "/api/v1/health", "", "Bearer t0ken-abc").status == 200);
  CHECK(http_call(s.server->port(), "GET", "/api/v1/version", "", "Bearer wrong").status == 200);
  // The document says so: `security: []` on exactly these operations, no 401 among their answers.
  const json document = json::parse(s.get("/api/v1/openapi.json").body);
  std::set<std::string> open;
  for (const auto& [path, methods] : document["paths"].items())
    for (const auto& [method, op] : methods.items())
      if (op.contains("security")) {
        CHECK(op["security"] == json::array());
        CHECK_FALSE(op["responses"].contains("401"));
        open.insert(method + " " + path);
      } else {
        CHECK(op["responses"].contains("401"));
      }
  CHECK(open == std::set<std::string>{"get /health", "get /version"});
  CHECK(document["security"].size() == 2);  // everything else: Basic or Bearer
}

TEST_CASE("Http.ApiDocumentationPageListsEveryOperationOfTheDocument" * doctest::timeout(30)) {
  served_face s("", std::string("t0ken-abc"));
  const auto r = s.get("/api/v1/ui/");
  REQUIRE(r.status == 200);
  CHECK(r.content_type.starts_with("text/html"));
  CHECK(s.get("/api/v1/ui").status == 200);
  CHECK(s.send("POST", "/api/v1/ui/", json::object()).status == 401);  // only reading is open
  CHECK(s.send("POST", "/api/v1/ui/", json::object(), "Bearer t0ken-abc").status == 405);
  const std::string& page = r.body;
  // Under the UI's policy: no inline script or style, only the site's own files.
  CHECK(page.find("<script>") == std::string::npos);
  CHECK(page.find(" style=") == std::string::npos);
  CHECK(page.find("<style") == std::string::npos);
  CHECK(page.find("http://") == std::string::npos);
  CHECK(page.find("https://") == std::string::npos);
  CHECK(page.find("<link rel=\"stylesheet\" href=\"/static/app.css\">") != std::string::npos);
  // Every operation of the served document: an anchor, a contents link to it, its method and path,
  // its summary (written for it, not its operationId in words), and its parameters.
  const json document = json::parse(s.get("/api/v1/openapi.json").body);
  std::size_t operations = 0;
  for (const auto& [path, methods] : document["paths"].items())
    for (const auto& [method, op] : methods.items()) {
      ++operations;
      const std::string id = op["operationId"];
      CAPTURE(id);
      CHECK(page.find("id=\"" + id + "\"") != std::string::npos);
      CHECK(page.find("href=\"#" + id + "\"") != std::string::npos);
      const auto at = page.find("id=\"" + id + "\"");
      const std::string section = page.substr(at, page.find("</section>", at) - at);
      CHECK(section.find("<code>/api/v1" + path + "</code>") != std::string::npos);
      const std::string summary = op["summary"];
      std::string words = id;
      std::replace(words.begin(), words.end(), '_', ' ');
      words[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(words[0])));
      CHECK(summary != words);
      for (const auto& p : op["parameters"]) CHECK(section.find("<code>" + p["name"].get<std::string>() + "</code>") != std::string::npos);
      CHECK(section.find(op.contains("requestBody") ? "Request body" : "Responses") != std::string::npos);
    }
  CHECK(operations >= 50);
  // The bodies and answers link to their schemas, each shown with its fields.
  CHECK(page.find("href=\"#schema-DAGRun\"") != std::string::npos);
  CHECK(page.find("id=\"schema-DAGRun\"") != std::string::npos);
  CHECK(page.find("<code>dag_run_id</code>") != std::string::npos);
  CHECK(page.find("no credentials needed") != std::string::npos);
  // The web UI links to it from every page.
  CHECK(s.get("/login").body.find("<a href=\"/api/v1/ui/\">API</a>") != std::string::npos);
}

TEST_CASE("Http.ApiRefusesUnknownParametersAndAnswersWrongMethodsWithTheAllowedOnes" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  auto r = s.get("/api/v1/dags/etl/dagRuns?stat=failed");
  CHECK(r.status == 400);
  CHECK(r.content_type == "application/problem+json");
  CHECK(json::parse(r.body)["detail"].get<std::string>().starts_with("unknown query parameter 'stat' (known: limit, offset"));
  r = s.send("PUT", "/api/v1/dags/etl", json::object());
  CHECK(r.status == 405);
  CHECK(json::parse(r.body)["detail"] == "PUT is not allowed on /api/v1/dags/etl (allowed: DELETE, GET, PATCH)");
  r = s.get("/api/v1/dags/etl/dagRuns?order_by=colour");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"].get<std::string>().starts_with("order_by: cannot order by 'colour'"));
  CHECK(s.get("/api/v1/nothing/here").status == 404);
}

TEST_CASE("Http.UiShowsDagsTheGridTheGraphAndLogsEscaped" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-02T00:00:00Z"}}).status == 200);
  const std::string run_id = "manual__2024-01-02T00:00:00+00:00";
  s.fail_task(run_id, 0, "<b>not markup</b>\n", "<script>alert(1)</script>");
  auto home = s.get("/");
  CHECK(home.status == 200);
  CHECK(home.content_type == "text/html; charset=utf-8");
  CHECK(home.body.find("<a href=\"/dags/etl\">etl</a>") != std::string::npos);
  CHECK(home.body.find("href=\"/dags/etl/trigger\"") != std::string::npos);  // the trigger form
  auto grid = s.get("/dags/etl");
  CHECK(grid.status == 200);
  CHECK(grid.body.find("<h2>Grid</h2>") != std::string::npos);
  CHECK(grid.body.find("data-busy=\"1\"") != std::string::npos);  // its run is still queued: the page updates live
  CHECK(s.get("/dags/etl?tab=graph").body.find("<svg") != std::string::npos);
  // The details panel of the failed task instance: its message is text, never markup.
  grid = s.get("/dags/etl?run=manual__2024-01-02T00%3A00%3A00%2B00%3A00&task=extract");
  CHECK(grid.body.find("<script>") == std::string::npos);
  CHECK(grid.body.find("&lt;script&gt;") != std::string::npos);
  CHECK(grid.body.find("/dags/etl/runs/manual__2024-01-02T00%3A00%3A00%2B00%3A00/tasks/extract/logs/1") != std::string::npos);
  auto log_page = s.get("/dags/etl/runs/manual__2024-01-02T00%3A00%3A00%2B00%3A00/tasks/extract/logs/1");
  CHECK(log_page.status == 200);
  CHECK(log_page.body.find("<pre>&lt;b&gt;not markup&lt;/b&gt;\n</pre>") != std::string::npos);
  CHECK(s.get("/dags/nope").status == 404);
}

// The CSRF token a UI page's forms carry back (field `csrf`).
std::string csrf_of(const std::string& page) {
  const std::string marker = "name=\"csrf\" value=\"";
  const auto at = page.find(marker);
  REQUIRE(at != std::string::npos);
  const auto from = at + marker.size();
  return page.substr(from, page.find('"', from) - from);
}

TEST_CASE("Http.UiFormsTriggerPauseAndClearThenRedirect" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  const std::string form = "csrf=" + csrf_of(s.get("/").body);
  auto r = http_call(s.server->port(), "POST", "/dags/etl/pause", form);
  CHECK(r.status == 303);
  CHECK(r.location == "/dags/etl");
  CHECK(s.store()->paused_dags() == std::set<std::string>{"etl"});
  CHECK(http_call(s.server->port(), "POST", "/dags/etl/unpause", form).status == 303);
  CHECK(s.store()->paused_dags().empty());
  CHECK(http_call(s.server->port(), "POST", "/dags/etl/trigger", form).status == 303);
  dag::run_filter all;
  all.dag_id = "etl";
  REQUIRE(s.store()->runs(all).size() == 1);
  CHECK(s.store()->runs(all)[0].run_id == "manual__2024-06-01T12:00:00+00:00");  // the injected clock's now
  CHECK(http_call(s.server->port(), "POST", "/dags/etl/trigger", form).status == 409);
  // "clear failed" on a failed run puts its failed tasks back and queues it.
  const std::string run_id = "manual__2024-06-01T12:00:00+00:00";
  s.fail_task(run_id, 1, "", "", true);
  CHECK(s.get("/dags/etl/runs/manual__2024-06-01T12%3A00%3A00%2B00%3A00").body.find(
            "href=\"/dags/etl/runs/manual__2024-06-01T12%3A00%3A00%2B00%3A00/clear?only_failed=1\"") != std::string::npos);
  r = http_call(s.server->port(), "POST", "/dags/etl/runs/manual__2024-06-01T12%3A00%3A00%2B00%3A00/clear", form);
  CHECK(r.status == 303);
  CHECK(s.store()->find_run("etl", run_id)->state == dag::run_state::queued);
  CHECK(s.store()->task_instances("etl", run_id)[1].state == dag::task_state::none);
}

TEST_CASE("Http.UiNeedsASignInWithTheTokenWhenOneIsSet" * doctest::timeout(30)) {
  served_face s("", std::string("t0ken-abc"));
  s.load_etl();
  const auto port = s.server->port();
  auto r = s.get("/");
  CHECK(r.status == 303);
  CHECK(r.location == "/login");
  CHECK(http_call(port, "POST", "/dags/etl/pause", "").status == 401);
  CHECK(http_call(port, "POST", "/login", "token=wrong").status == 401);
  r = http_call(port, "POST", "/login", "token=t0ken-abc");
  CHECK(r.status == 303);
  REQUIRE(r.set_cookie.starts_with("dagrun_session="));
  CHECK(r.set_cookie.find("HttpOnly") != std::string::npos);
  CHECK(r.set_cookie.find("SameSite=Strict") != std::string::npos);
  const std::string session = r.set_cookie.substr(0, r.set_cookie.find(';'));
  CHECK(http_call(port, "GET", "/", "", "", session).status == 200);
  const std::string form = "csrf=" + csrf_of(http_call(port, "GET", "/", "", "", session).body);
  CHECK(http_call(port, "POST", "/dags/etl/pause", "", "", session).status == 403);  // no CSRF token
  CHECK(http_call(port, "POST", "/dags/etl/pause", form, "", session).status == 303);
  CHECK(s.store()->paused_dags() == std::set<std::string>{"etl"});
  CHECK(http_call(port, "GET", "/", "", "", "dagrun_session=guessed").status == 303);
}

TEST_CASE("Http.BrowsersOfOtherSitesCannotReachOrChangeIt" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  const auto port = s.server->port();
  // DNS rebinding: a name that is not loopback, on a server without a token.
  std::string reply = dag_test::raw_exchange(port, "GET /api/v1/dags HTTP/1.1\r\nHost: evil.example:8080\r\nConnection: close\r\n\r\n");
  CHECK(reply.starts_with("HTTP/1.1 403"));
  // A cross-site form (text/plain or urlencoded) cannot post to the API...
  reply = dag_test::raw_exchange(port,
                                 "POST /api/v1/dags/etl/clearTaskInstances HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                                 "Content-Length: 17\r\nConnection: close\r\n\r\n{\"dry_run\":false}");
  CHECK(reply.starts_with("HTTP/1.1 415"));
  // ...nor to the UI's forms.
  reply = dag_test::raw_exchange(port, "POST /dags/etl/pause HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\n"
                                       "Content-Length: 0\r\nConnection: close\r\n\r\n");
  CHECK(reply.starts_with("HTTP/1.1 403"));
  reply = dag_test::raw_exchange(port, "POST /dags/etl/pause HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nOrigin: https://evil.example\r\n"
                                       "Content-Length: 0\r\nConnection: close\r\n\r\n");
  CHECK(reply.starts_with("HTTP/1.1 403"));
  CHECK(s.store()->paused_dags().empty());
}

TEST_CASE("Http.HeadGetsHeadersOnlyAndOddMethodsAreCountedAsOther" * doctest::timeout(30)) {
  served_face s;
  s.metrics.set("dagrun_scheduler_heartbeat", unix_seconds(s.clock.at));
  const std::string reply = dag_test::raw_exchange(s.server->port(), "HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  CHECK(reply.starts_with("HTTP/1.1 200"));
  CHECK(reply.ends_with("\r\n\r\n"));  // no body follows the headers
  dag_test::raw_exchange(s.server->port(), "BREW /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  CHECK(s.get("/metrics").body.find("http_requests_total{method=\"other\",status_code=\"405\"} 1\n") != std::string::npos);
}

TEST_CASE("Http.ClearingDefaultsToFailedTasksAndRefusesUnknownFields" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-02T00:00:00Z"}}).status == 200);
  const std::string run_id = "manual__2024-01-02T00:00:00+00:00";
  s.fail_task(run_id, 1, "", "", true);
  {
    auto db = s.store();  // the other task succeeded
    dag::change_set c;
    auto tis = db->task_instances("etl", run_id);
    tis[0].state = dag::task_state::success;
    tis[0].try_number = 1;
    c.task_instances.push_back({dag::task_state::none, 0, tis[0]});
    db->apply(c);
  }
  auto r = s.send("POST", "/api/v1/dags/etl/clearTaskInstances", {{"dag_run_id", run_id}, {"dry_run", false}});
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["task_instances"].size() == 1);  // only the failed one (Airflow's only_failed: true)
  CHECK(s.store()->task_instances("etl", run_id)[0].state == dag::task_state::success);
  // Past and future count from a run: without one they are refused, not ignored.
  r = s.send("POST", "/api/v1/dags/etl/clearTaskInstances", {{"include_future", true}});
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"].get<std::string>().starts_with("include_past, include_future: name the run"));
  CHECK(s.send("POST", "/api/v1/dags/etl/clearTaskInstances", {{"dag_run_id", "nope"}}).status == 404);
}

TEST_CASE("Http.ApiMarksTaskInstancesAndClearsWithRelatives" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-02T00:00:00Z"}}).status == 200);
  const std::string run_id = "manual__2024-01-02T00:00:00+00:00";
  s.fail_task(run_id, 0, "", "boom", true);  // extract failed; load never ran
  const std::string ti = "/api/v1/dags/etl/dagRuns/manual__2024-01-02T00%3A00%3A00%2B00%3A00/taskInstances/";
  auto states = [&] {
    std::vector<std::string> out;
    for (const auto& t : s.store()->task_instances("etl", run_id)) out.emplace_back(dag::to_string(t.state));
    return out;
  };

  // PATCH a task instance's state: Airflow's mark success / failed, a dry run unless told not to
  // be (as Airflow's: it answers with the instance it would mark and changes nothing).
  const json named{{"dag_id", "etl"}, {"dag_run_id", run_id}, {"task_id", "extract"}, {"execution_date", "2024-01-02T00:00:00+00:00"}};
  auto r = s.send("PATCH", ti + "extract", {{"new_state", "success"}});
  CHECK(r.status == 200);
  CHECK(json::parse(r.body) == named);
  CHECK(states() == std::vector<std::string>{"failed", "none"});
  r = s.send("PATCH", ti + "extract", {{"new_state", "success"}, {"dry_run", false}});
  CHECK(r.status == 200);
  CHECK(json::parse(r.body) == named);
  CHECK(states() == std::vector<std::string>{"success", "none"});
  CHECK(s.store()->find_run("etl", run_id)->state == dag::run_state::queued);  // a scheduler takes it up again
  CHECK(s.send("PATCH", ti + "extract", {{"new_state", "running"}}).status == 400);
  CHECK(s.send("PATCH", ti + "nope", {{"new_state", "failed"}}).status == 404);
  CHECK(s.send("PATCH", ti + "extract", {{"new_state", "failed"}, {"include_future", true}}).status == 400);

  // updateTaskInstancesState with downstream: a dry run by default, as Airflow's.
  const json mark{{"task_id", "extract"}, {"dag_run_id", run_id}, {"new_state", "failed"}, {"include_downstream", true}};
  r = s.send("POST", "/api/v1/dags/etl/updateTaskInstancesState", mark);
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["task_instances"].size() == 2);
  CHECK(states() == std::vector<std::string>{"success", "none"});
  json real = mark;
  real["dry_run"] = false;
  r = s.send("POST", "/api/v1/dags/etl/updateTaskInstancesState", real);
  CHECK(json::parse(r.body)["task_instances"].size() == 2);
  CHECK(states() == std::vector<std::string>{"failed", "failed"});
  real["dag_run_id"] = "nope";
  CHECK(s.send("POST", "/api/v1/dags/etl/updateTaskInstancesState", real).status == 404);

  // clearTaskInstances with include_downstream clears load with extract.
  r = s.send("POST", "/api/v1/dags/etl/clearTaskInstances",
             {{"task_ids", {"extract"}}, {"include_downstream", true}, {"dry_run", false}, {"only_failed", false}});
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["task_instances"].size() == 2);
  CHECK(states() == std::vector<std::string>{"none", "none"});

  // … and with include_upstream (not a dry run) clears extract, upstream of load, with load.
  real["dag_run_id"] = run_id;
  REQUIRE(s.send("POST", "/api/v1/dags/etl/updateTaskInstancesState", real).status == 200);
  REQUIRE(states() == std::vector<std::string>{"failed", "failed"});
  r = s.send("POST", "/api/v1/dags/etl/clearTaskInstances",
             {{"task_ids", {"load"}}, {"include_upstream", true}, {"dry_run", false}, {"only_failed", false}});
  CHECK(r.status == 200);
  const json cleared = json::parse(r.body)["task_instances"];
  REQUIRE(cleared.size() == 2);
  CHECK(cleared[0]["task_id"] == "extract");
  CHECK(cleared[1]["task_id"] == "load");
  CHECK(states() == std::vector<std::string>{"none", "none"});
}

TEST_CASE("Http.DeeplyNestedBodiesAreRefusedNotParsed" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  // 100,000 levels of arrays in a run's conf overflowed the parser's stack and ended the daemon.
  const std::string deep = R"({"conf": {"a": )" + std::string(100000, '[') + std::string(100000, ']') + "}}";
  auto r = http_call(s.server->port(), "POST", "/api/v1/dags/etl/dagRuns", deep);
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["detail"].get<std::string>().find("nested more than") != std::string::npos);
  CHECK(s.get("/api/v1/dags/etl/dagRuns").status == 200);  // still serving
  const std::string within = R"({"conf": {"a": )" + std::string(60, '[') + std::string(60, ']') + "}}";
  CHECK(http_call(s.server->port(), "POST", "/api/v1/dags/etl/dagRuns", within).status == 200);
}

TEST_CASE("Http.LogPagesShowTheStartAndTheEndOfALargeLogAndStreamTheWholeOne" * doctest::timeout(60)) {
  served_face s;
  s.load_etl();
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-02T00:00:00Z"}}).status == 200);
  const std::string run_id = "manual__2024-01-02T00:00:00+00:00";
  std::string big;
  for (int i = 0; i < 400000; ++i) big += "line " + std::to_string(i) + " of a chatty task\n";  // ~11 MB
  big += std::string(3 * 1024 * 1024, 'x') + "\nTHE END\n";
  s.fail_task(run_id, 0, big);
  const std::string log = "/dags/etl/runs/manual__2024-01-02T00%3A00%3A00%2B00%3A00/tasks/extract/logs/1";
  const auto page = s.get(log);
  CHECK(page.status == 200);
  CHECK(page.body.find("line 0 of a chatty task") != std::string::npos);  // how it began
  CHECK(page.body.find("THE END") != std::string::npos);                  // and the end, where failures are
  CHECK(page.body.find("bytes of this log are left out here") != std::string::npos);
  CHECK(page.body.find("line 200000 of a chatty task") == std::string::npos);
  CHECK(page.body.size() < 1024 * 1024);
  CHECK(page.body.find("href=\"" + log + "/download\"") != std::string::npos);
  // The whole log, streamed from its file, in the UI and in the API (Airflow's full_content).
  const auto whole = s.get(log + "/download");
  CHECK(whole.status == 200);
  CHECK(whole.content_type == "text/plain; charset=utf-8");
  CHECK(whole.body == big);
  const std::string api = "/api/v1/dags/etl/dagRuns/manual__2024-01-02T00%3A00%3A00%2B00%3A00/taskInstances/extract/logs/1";
  CHECK(http_call(s.server->port(), "GET", api + "?full_content=true", "", "", "", "text/plain").body == big);
  // As JSON too (what Airflow's client asks for), for a log of up to 64 MiB.
  for (const std::string accept : {"application/json", "application/json, text/plain"}) {
    const auto as_json = http_call(s.server->port(), "GET", api + "?full_content=true", "", "", "", accept);
    REQUIRE(as_json.status == 200);
    const json answer = json::parse(as_json.body);
    CHECK(answer["content"] == big);
    CHECK(answer["continuation_token"] == std::to_string(big.size()));
  }
  const auto excerpt = http_call(s.server->port(), "GET", api, "", "", "", "text/plain").body;
  CHECK(excerpt.size() < big.size());
  CHECK(excerpt.starts_with("line 0 of a chatty task"));
  CHECK(excerpt.ends_with("THE END\n"));
}

TEST_CASE("Http.NumbersInPathsAreStrict" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-02T00:00:00Z"}}).status == 200);
  s.fail_task("manual__2024-01-02T00:00:00+00:00", 0, "try one\n");
  const std::string ui = "/dags/etl/runs/manual__2024-01-02T00%3A00%3A00%2B00%3A00/tasks/extract/logs/";
  const std::string api = "/api/v1/dags/etl/dagRuns/manual__2024-01-02T00%3A00%3A00%2B00%3A00/taskInstances/extract/logs/";
  CHECK(s.get(ui + "1").status == 200);
  CHECK(s.get(api + "1").status == 200);
  for (const std::string bad : {"1abc", "+1", "%201", "1.0", "-1", "99999999999999999999", ""}) {
    CAPTURE(bad);
    CHECK(s.get(ui + bad).status >= 400);
    CHECK(s.get(ui + bad).body.find("try one") == std::string::npos);
    CHECK(s.get(api + bad).status >= 400);
    CHECK(s.get(api + bad).body.find("try one") == std::string::npos);
  }
  CHECK(s.get(ui + "1abc").status == 400);
  CHECK(s.get(api + "1abc").status == 400);
  CHECK(s.get("/api/v1/dags?limit=1x").status == 400);
}

TEST_CASE("Http.TheBearerSchemeIsCaseInsensitive" * doctest::timeout(30)) {
  served_face s("", std::string("t0ken-abc"));
  for (const std::string scheme : {"Bearer", "bearer", "BEARER", "bEaReR"}) {
    CAPTURE(scheme);
    CHECK(http_call(s.server->port(), "GET", "/api/v1/dags", "", scheme + " t0ken-abc").status == 200);
  }
  CHECK(http_call(s.server->port(), "GET", "/api/v1/dags", "", "Basic t0ken-abc").status == 401);
  CHECK(http_call(s.server->port(), "GET", "/api/v1/dags", "", "bearer t0ken-abd").status == 401);
  CHECK(http_call(s.server->port(), "GET", "/api/v1/dags", "", "bearert0ken-abc").status == 401);
}

TEST_CASE("Http.SignInsAreRateLimitedPerAddress" * doctest::timeout(30)) {
  served_face s("", std::string("t0ken-abc"));
  const auto port = s.server->port();
  for (int i = 0; i < 5; ++i) CHECK(http_call(port, "POST", "/login", "token=guess" + std::to_string(i)).status == 401);
  // The sixth within a minute is refused before the token is even compared: the right one too.
  for (const std::string token : {"guess", "t0ken-abc"}) {
    const auto r = http_call(port, "POST", "/login", "token=" + token);
    CHECK(r.status == 429);
    REQUIRE(r.headers.count("retry-after") == 1);
    const int wait = std::stoi(r.headers.at("retry-after"));
    CHECK(wait >= 1);
    CHECK(wait <= 60);
  }
  // Another address is not held up by this one's guesses.
  const auto other = http_call(port, "POST", "/login", "token=t0ken-abc", "", "", "", "127.0.0.2");
  CHECK(other.status == 303);
}

TEST_CASE("Http.EveryAnswerForbidsFramingAndSniffingAndTheUiWorksUnderItsPolicy" * doctest::timeout(30)) {
  served_face s;
  s.load_etl();
  REQUIRE(s.send("POST", "/api/v1/dags/etl/dagRuns", {{"logical_date", "2024-01-02T00:00:00Z"}}).status == 200);
  for (const std::string target : {"/", "/dags/etl", "/api/v1/dags", "/health", "/metrics", "/nothing", "/static/app.css"}) {
    CAPTURE(target);
    auto r = s.get(target);
    CHECK(r.headers["x-frame-options"] == "DENY");
    CHECK(r.headers["x-content-type-options"] == "nosniff");
    CHECK(r.headers["content-security-policy"].find("frame-ancestors 'none'") != std::string::npos);
  }
  // The policy allows no inline style or script: the pages use none, only the site's own files.
  CHECK(s.get("/").headers["content-security-policy"].find("script-src 'self'") != std::string::npos);
  for (const std::string target : {"/", "/dags/etl"}) {
    const auto page = s.get(target);
    CHECK(page.body.find("<style") == std::string::npos);
    CHECK(page.body.find(" style=") == std::string::npos);
    CHECK(page.body.find("<script>") == std::string::npos);
    CHECK(page.body.find(" onclick=") == std::string::npos);
    CHECK(page.body.find("<script src=\"/static/app.js\" defer></script>") != std::string::npos);
    CHECK(page.body.find("<link rel=\"stylesheet\" href=\"/static/app.css\">") != std::string::npos);
  }
  const auto css = s.get("/static/app.css");
  CHECK(css.status == 200);
  CHECK(css.content_type.starts_with("text/css"));
  CHECK(css.body.find(".st-failed{") != std::string::npos);
}

TEST_CASE("Http.AuthenticationComesBeforeTheBodyIsRead" * doctest::timeout(30)) {
  served_face s("", std::string("t0ken-abc"));
  s.load_etl();
  // A megabyte announced and never sent: without the token the answer does not wait for it.
  const auto start = std::chrono::steady_clock::now();
  const std::string reply = dag_test::raw_exchange(
      s.server->port(), "POST /api/v1/dags/etl/dagRuns HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        "Content-Length: 1000000\r\n\r\n{");
  CHECK(reply.starts_with("HTTP/1.1 401"));
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK(reply.find("X-Frame-Options: DENY") != std::string::npos);
}

TEST_CASE("Http.HealthAnswersWithinASecondWhenTheDatabaseDoesNotAnswer" * doctest::timeout(60)) {
  // A "server" that accepts connections and never says a word: PostgreSQL hung, or a network
  // dropping packets. The face's own connection would wait for it (and then retry).
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto url = "postgresql://postgres@127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/dagrun?connect_timeout=20";
  served_face s(url);
  s.metrics.set("dagrun_scheduler_heartbeat", unix_seconds(s.clock.at));
  for (int i = 0; i < 2; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = s.get("/health");
    const auto took = std::chrono::steady_clock::now() - start;
    MESSAGE("/health took " << std::chrono::duration<double, std::milli>(took).count() << " ms");
    CHECK(took < 1s);
    CHECK(r.status == 503);
    CHECK(json::parse(r.body)["metadatabase"]["status"] == "unhealthy");
  }
  CHECK(dag::http_face::express({"GET", "/health", {}, "", ""}));
  CHECK_FALSE(dag::http_face::express({"GET", "/metrics", {}, "", ""}));
}

TEST_CASE("Http.ServiceOfAnEngineFollowsItsDagsAndRefusesToGuessItsStore" * doctest::timeout(30)) {
  const auto dir = std::filesystem::temp_directory_path() / ("dagrun-http-service-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  dag::engine_options o;
  o.store_url = "sqlite:" + (dir / "dagrun.db").string();
  o.log_folder = dir / "logs";
  {
    dag::engine eng(o);
    dag::serve_options serving;
    serving.listen = "127.0.0.1:0";
    dag::http_service http(eng, serving);
    auto ids = [&] {
      std::set<std::string> out;
      const json listed = json::parse(http_call(http.port(), "GET", "/api/v1/dags").body);
      for (const auto& d : listed["dags"]) out.insert(d["dag_id"].get<std::string>());
      return out;
    };
    CHECK(ids().empty());
    dag::definition a{"first"};
    a.bash("t", "true");
    eng.set_dags({a});
    CHECK(ids() == std::set<std::string>{"first"});
    dag::definition b{"second"};
    b.bash("t", "true");
    eng.set_dags({a, b});  // a reload, as the daemon's
    CHECK(ids() == std::set<std::string>{"first", "second"});
    // A trigger through the API lands in the engine's store.
    CHECK(http_call(http.port(), "POST", "/api/v1/dags/second/dagRuns", "{}").status == 200);
    CHECK(eng.store().runs({}).size() == 1);
    serving.listen = "0.0.0.0:0";
    CHECK_THROWS_AS(dag::http_service(eng, serving), dag::usage_error);  // beyond loopback without a token
  }
  {
    auto own = dag::open_store(o.store_url);
    fixed_clock clock;
    dag::engine eng(*own, dag::builtin_operators(), clock, o);
    dag::serve_options serving;
    serving.listen = "127.0.0.1:0";
    CHECK_THROWS_WITH_AS(dag::http_service(eng, serving),
                         doctest::Contains("needs serve_options.store_url"), dag::usage_error);
    serving.store_url = o.store_url;
    dag::http_service http(eng, serving);
    CHECK(http_call(http.port(), "GET", "/api/v1/dags/second").status == 404);  // no DAGs set on this engine
    CHECK(http_call(http.port(), "GET", "/api/v1/dags/second/dagRuns").status == 200);  // its history, in the store
  }
  std::filesystem::remove_all(dir);
}
