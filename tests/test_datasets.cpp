// Datasets (data-aware scheduling) end to end: producers' outlets, consumers' runs, the events in
// the run's context, the API's event post, two schedulers on one PostgreSQL, and the CLI listings.
#include <doctest/doctest.h>

#include <barrier>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <dag/engine/engine.hpp>
#include <dag/http/face.hpp>
#include <dag/http/server.hpp>
#include <dag/load/check.hpp>
#include <dag/load/yaml_loader.hpp>
#include <dag/metrics/registry.hpp>
#include <dag/model/operations.hpp>
#include <dag/operators/builtin.hpp>
#include <dag/runner/cli.hpp>

#include "support/eventually.hpp"
#include "support/http_client.hpp"

using namespace std::chrono_literals;
using dag_test::eventually;
using json = nlohmann::json;

namespace {

// Fixed dates (run ids), but instants that move, so the schedulers poll the store as in a daemon.
struct fixed_clock final : dag::clock {
  dag::time_point at = dag::parse_time("2024-06-01T00:00:00Z");
  dag::time_point now() const override { return at; }
  dag::timestamp precise_now() const override { return dag::system_clock{}.precise_now(); }
};

const std::string orders = "s3://warehouse/orders.parquet";
const std::string customers = "s3://warehouse/customers.parquet";

// A scratch folder with a SQLite store (or the store at `url`) and a logs folder.
struct sandbox {
  std::filesystem::path dir;
  std::string url;
  std::unique_ptr<dag::store> db;
  dag::operator_catalog operators = dag::builtin_operators();
  fixed_clock clock;

  explicit sandbox(std::string store_url = "") {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("dagrun-datasets-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "dags");
    url = store_url.empty() ? "sqlite:" + (dir / "dagrun.db").string() : store_url;
    db = dag::open_store(url);
  }
  ~sandbox() { std::filesystem::remove_all(dir); }

  dag::engine_options daemon() const {
    dag::engine_options o;
    o.parallelism = 4;
    o.log_folder = dir / "logs";
    o.poll_interval = 50ms;
    return o;
  }
  // An example DAG of the docs (examples/datasets/), loaded as `dagrun` loads it.
  dag::definition example(const std::string& name) const {
    auto loaded = dag::load_yaml_file(std::filesystem::path(DAG_SOURCE_DIR) / "examples" / "datasets" / name, operators);
    for (const auto& p : loaded.problems) FAIL_CHECK(p.what());
    REQUIRE(loaded.dag);
    return std::move(*loaded.dag);
  }
  std::vector<dag::run_record> runs_of(const std::string& dag_id) const {
    dag::run_filter f;
    f.dag_id = dag_id;
    return db->runs(f);
  }
  bool all_finished(const std::string& dag_id, std::size_t count) const {
    const auto runs = runs_of(dag_id);
    return runs.size() == count && std::all_of(runs.begin(), runs.end(), [](const auto& r) { return dag::is_finished(r.state); });
  }
};

// Steps `eng` until `done` holds (deadline 60 s).
void run_until(dag::engine& eng, const std::function<bool()>& done) {
  std::stop_source stop;
  std::jthread guard([&](std::stop_token st) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, st, 60s, [] { return false; })) stop.request_stop();
  });
  eng.run_until(done, stop.get_token());
  REQUIRE(done());
}

// Triggers a manual run of producer `dag_id` and runs the engine until it succeeded.
void produce(sandbox& s, dag::engine& eng, const std::string& dag_id, const std::string& date) {
  auto key = eng.create_run(dag_id, dag::run_type::manual, dag::parse_time(date));
  REQUIRE(key);
  run_until(eng, [&] { return s.db->find_run(key->dag_id, key->run_id)->state == dag::run_state::success; });
}

}  // namespace

TEST_CASE("Datasets.AProducersSuccessTriggersTheConsumerWithTheEventsInItsContext") {
  sandbox s;
  dag::engine eng(*s.db, s.operators, s.clock, s.daemon());
  eng.set_dags({s.example("orders_export.yaml"), s.example("customers_export.yaml"), s.example("refresh_dashboard.yaml")});
  produce(s, eng, "orders_export", "2024-01-01");

  // The producer's success recorded one event of its outlet, with where it came from.
  const auto events = s.db->dataset_events({});
  REQUIRE(events.size() == 1);
  CHECK(events[0].uri == orders);
  CHECK(events[0].source_dag_id == "orders_export");
  CHECK(events[0].source_task_id == "export");
  CHECK(events[0].source_run_id == "manual__2024-01-01T00:00:00+00:00");

  // `orders | customers`: one of them is enough.
  run_until(eng, [&] { return s.all_finished("refresh_dashboard", 1); });
  const auto runs = s.runs_of("refresh_dashboard");
  CHECK(runs[0].type == dag::run_type::dataset_triggered);
  CHECK(runs[0].run_id == "dataset_triggered__2024-06-01T00:00:00+00:00");
  CHECK(runs[0].state == dag::run_state::success);
  const auto triggering = s.db->triggering_dataset_events("refresh_dashboard", runs[0].run_id);
  REQUIRE(triggering.size() == 1);
  CHECK(triggering[0].id == events[0].id);
  CHECK(s.db->runs_triggered_by(events[0].id).front().run_id == runs[0].run_id);
  CHECK(s.db->xcom("refresh_dashboard", runs[0].run_id, "refresh") == "refreshing after " + orders);
  CHECK(s.db->queued_datasets().empty());

  // A repeat of the producer's end changes nothing: one event per try.
  dag::change_set again;
  again.dataset_events.push_back(events[0]);
  s.db->apply(again);
  CHECK(s.db->dataset_events({}).size() == 1);
  CHECK(s.db->queued_datasets().empty());
}

TEST_CASE("Datasets.AConsumerOfTwoDatasetsWaitsForBothAndTakesEveryEventSinceItsLastRun") {
  sandbox s;
  dag::engine eng(*s.db, s.operators, s.clock, s.daemon());
  eng.set_dags({s.example("orders_export.yaml"), s.example("customers_export.yaml"), s.example("sales_report.yaml")});
  produce(s, eng, "orders_export", "2024-01-01");
  produce(s, eng, "orders_export", "2024-01-02");
  eng.step();
  CHECK(s.runs_of("sales_report").empty());  // customers not updated yet
  CHECK(s.db->queued_datasets().at("sales_report") == std::set<std::string>{orders});

  produce(s, eng, "customers_export", "2024-01-01");
  run_until(eng, [&] { return s.all_finished("sales_report", 1); });
  const auto run = s.runs_of("sales_report").front();
  CHECK(run.state == dag::run_state::success);
  const auto triggering = s.db->triggering_dataset_events("sales_report", run.run_id);
  REQUIRE(triggering.size() == 3);  // both orders updates, and customers'
  CHECK(triggering[0].uri == orders);
  CHECK(triggering[1].uri == orders);
  CHECK(triggering[2].uri == customers);
  CHECK(s.db->xcom("sales_report", run.run_id, "report") == "orders by orders_export, 2 datasets");

  // The next run waits for both again, and takes only what came after the first.
  produce(s, eng, "customers_export", "2024-01-02");
  eng.step();
  CHECK(s.runs_of("sales_report").size() == 1);
  produce(s, eng, "orders_export", "2024-01-03");
  run_until(eng, [&] { return s.all_finished("sales_report", 2); });
  const auto second = s.runs_of("sales_report").front();
  CHECK(second.run_id == "dataset_triggered__2024-06-01T00:00:01+00:00");  // a second after the first: ids are to the second
  CHECK(s.db->triggering_dataset_events("sales_report", second.run_id).size() == 2);
}

TEST_CASE("Datasets.AnEventPostedThroughTheApiTriggersTheConsumer") {
  sandbox s;
  dag::definition consumer = s.example("refresh_dashboard.yaml");
  dag::metrics_registry metrics;
  dag::declare_engine_metrics(metrics);
  dag::http_face_options face_options;
  face_options.db_url = s.url;
  dag::http_face face(face_options, metrics, s.clock);
  face.set_dags({s.example("refresh_dashboard.yaml")});
  dag::http_server server("127.0.0.1", 0, [&](const dag::http_request& r) { return face.handle(r); });

  dag::engine eng(*s.db, s.operators, s.clock, s.daemon());
  eng.set_dags({consumer});  // registers the datasets: the API accepts events of known ones only

  const auto post = [&](const json& body) {
    return dag_test::http_call(server.port(), "POST", "/api/v1/datasets/events", body.dump());
  };
  const auto unknown = post({{"dataset_uri", "s3://nowhere/x"}});
  CHECK(unknown.status == 404);
  CHECK(post({{"dataset_uri", orders}, {"extra", "not an object"}}).status == 400);
  const auto posted = post({{"dataset_uri", orders}, {"extra", {{"rows", 42}}}});
  REQUIRE(posted.status == 200);
  const json event = json::parse(posted.body);
  CHECK(event["dataset_uri"] == orders);
  CHECK(event["extra"]["rows"] == 42);
  CHECK(event["source_dag_id"].is_null());

  run_until(eng, [&] { return s.all_finished("refresh_dashboard", 1); });
  const auto run = s.runs_of("refresh_dashboard").front();
  CHECK(run.type == dag::run_type::dataset_triggered);

  const auto upstream = dag_test::http_call(server.port(), "GET",
                                            "/api/v1/dags/refresh_dashboard/dagRuns/" + dag::percent_encoded(run.run_id) +
                                                "/upstreamDatasetEvents");
  REQUIRE(upstream.status == 200);
  const json events = json::parse(upstream.body);
  REQUIRE(events["total_entries"] == 1);
  CHECK(events["dataset_events"][0]["id"] == event["id"]);
  CHECK(events["dataset_events"][0]["created_dagruns"][0]["run_id"] == run.run_id);

  const json datasets = json::parse(dag_test::http_call(server.port(), "GET", "/api/v1/datasets").body);
  REQUIRE(datasets["total_entries"] == 2);
  CHECK(datasets["datasets"][0]["uri"] == customers);
  CHECK(datasets["datasets"][1]["consuming_dags"][0]["dag_id"] == "refresh_dashboard");
  // uri_pattern as Airflow's ILIKE '%pattern%': either case, `%` any run, `_` one character.
  const auto matching = [&](const std::string& pattern) {
    const json page = json::parse(
        dag_test::http_call(server.port(), "GET", "/api/v1/datasets?uri_pattern=" + dag::percent_encoded(pattern)).body);
    std::vector<std::string> uris;
    for (const auto& d : page["datasets"]) uris.push_back(d["uri"].get<std::string>());
    return uris;
  };
  CHECK(matching("ORDERS") == std::vector<std::string>{orders});
  CHECK(matching("s3://%.parquet") == std::vector<std::string>{customers, orders});
  CHECK(matching("_rders").size() == 1);
  CHECK(matching("warehouse/c%s.").size() == 1);
  CHECK(matching("orders_parquet").size() == 1);  // '_' any one character: the '.'
  CHECK(matching("orders\\_parquet").empty());  // escaped: '_' itself
  CHECK(matching("s3:/__warehouse").empty());
  const auto one = dag_test::http_call(server.port(), "GET", "/api/v1/datasets/" + dag::percent_encoded(orders));
  REQUIRE(one.status == 200);
  CHECK(json::parse(one.body)["uri"] == orders);
  CHECK(dag_test::http_call(server.port(), "GET", "/api/v1/datasets/" + dag::percent_encoded("s3://nowhere/x")).status == 404);
  const json filtered = json::parse(
      dag_test::http_call(server.port(), "GET", "/api/v1/datasets/events?dataset_id=" + datasets["datasets"][0]["id"].dump()).body);
  CHECK(filtered["total_entries"] == 0);  // customers has no event
  CHECK(json::parse(dag_test::http_call(server.port(), "GET", "/api/v1/datasets/events").body)["total_entries"] == 1);
  // The post is in the event log.
  dag::event_filter logged;
  logged.event = "dataset_event.create";
  CHECK(s.db->events(logged).size() == 1);
}

namespace {

std::string postgres_server() {
  const char* url = std::getenv("DAGRUN_TEST_POSTGRES_URL");
  if (!url || !*url) FAIL("DAGRUN_TEST_POSTGRES_URL is not set: start a server with scripts/test-postgres.sh start DIR PORT");
  return url;
}

// A database of its own on the test server, dropped after.
struct postgres_database {
  std::string server = postgres_server();
  std::string name = "dagrun_ds_" + std::to_string(::getpid());
  std::string url;
  postgres_database() {
    admin("DROP DATABASE IF EXISTS " + name);
    admin("CREATE DATABASE " + name);
    url = server + (server.find('?') == std::string::npos ? "?" : "&") + "dbname=" + name;
  }
  ~postgres_database() { admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); }
  void admin(const std::string& sql) const {
    pqxx::connection c(server);
    pqxx::nontransaction tx(c);
    tx.exec(sql);
  }
};

}  // namespace

TEST_CASE("Datasets.TwoSchedulersOnOnePostgresCreateEachConsumerRunOnce" * doctest::timeout(120)) {
  postgres_database pg;
  sandbox s(pg.url);
  auto second_store = dag::open_store(pg.url);
  dag::definition consumer{"consumer"};
  consumer.schedule_on({orders});
  consumer.bash("use", "true");
  dag::engine a(*s.db, s.operators, s.clock, s.daemon());
  dag::engine b(*second_store, s.operators, s.clock, s.daemon());
  a.set_dags({consumer});
  b.set_dags({consumer});

  // Each round: an update, then both schedulers step at the same moment until a run appears
  // (each looks at the queue when it polls the store): exactly one run comes of it.
  constexpr int rounds = 10;
  auto poster = dag::open_store(pg.url);
  const auto both_step = [&] {
    std::barrier both(2);
    auto step = [&](dag::engine& e) {
      both.arrive_and_wait();
      e.step();
    };
    std::jthread other([&] { step(b); });
    step(a);
  };
  for (int round = 0; round < rounds; ++round) {
    REQUIRE(dag::post_dataset_event(*poster, orders));
    const auto wanted = static_cast<std::size_t>(round + 1);
    REQUIRE(eventually([&] {
      both_step();
      return s.runs_of("consumer").size() >= wanted;
    }, 30s));
    both_step();  // both look again: nothing is left to claim
    CHECK(s.runs_of("consumer").size() == wanted);
  }
  // Every run has its own event, and every event triggered exactly one run.
  for (const auto& e : s.db->dataset_events({})) CHECK(s.db->runs_triggered_by(e.id).size() == 1);
  a.shutdown(10s);
  b.shutdown(10s);
}

TEST_CASE("Datasets.TheCliListsDatasetsAndEventsAndTheScheduleReadsOnDatasetUpdates") {
  sandbox s;
  for (const auto* name : {"orders_export.yaml", "customers_export.yaml", "sales_report.yaml"})
    std::filesystem::copy_file(std::filesystem::path(DAG_SOURCE_DIR) / "examples" / "datasets" / name, s.dir / "dags" / name);
  const auto cli = [&](std::vector<std::string> args) {
    for (const auto& flag : std::vector<std::string>{"--dags", (s.dir / "dags").string(), "--db", s.url, "--logs",
                                                      (s.dir / "logs").string()})
      args.push_back(flag);
    std::ostringstream out, err;
    const int status = dagrun::run_cli(args, out, err, s.clock);
    INFO(err.str());
    CHECK(status == 0);
    return out.str();
  };
  cli({"run", "orders_export", "--date", "2024-01-01"});
  const std::string list = cli({"datasets", "list"});
  CHECK(list.find(orders) != std::string::npos);
  CHECK(list.find("orders_export.export") != std::string::npos);
  CHECK(list.find("sales_report") != std::string::npos);
  const json listed = json::parse(cli({"--json", "datasets", "list"}));
  REQUIRE(listed.size() == 2);
  CHECK(listed[1]["uri"] == orders);
  CHECK(listed[1]["producing_tasks"][0]["task_id"] == "export");
  CHECK(listed[1]["consuming_dags"][0] == "sales_report");

  const json events = json::parse(cli({"--json", "datasets", "events", "--uri", orders}));
  REQUIRE(events.size() == 1);
  CHECK(events[0]["source_dag_id"] == "orders_export");
  CHECK(events[0]["source_run_id"] == "manual__2024-01-01T00:00:00+00:00");
  CHECK(json::parse(cli({"--json", "datasets", "events", "--uri", customers})).empty());
  CHECK(cli({"datasets", "events"}).find("orders_export.export (manual__2024-01-01T00:00:00+00:00)") != std::string::npos);

  CHECK(cli({"dags", "list"}).find("on dataset updates") != std::string::npos);
  CHECK(cli({"dags", "next", "sales_report"}).find("runs on dataset updates") != std::string::npos);
  CHECK(cli({"dags", "show", "sales_report"})
            .find("on dataset updates: (s3://warehouse/orders.parquet & s3://warehouse/customers.parquet)") != std::string::npos);
}

TEST_CASE("Datasets.ConditionsAreMetAsAirflowsAndOr") {
  using c = dag::dataset_condition;
  const c both = c::all({c::any({c::dataset("s3://a"), c::dataset("s3://b")}), c::dataset("s3://c")});
  CHECK(both.text() == "((s3://a | s3://b) & s3://c)");
  CHECK_FALSE(both.met_by({"s3://a"}));
  CHECK(both.met_by({"s3://b", "s3://c"}));
  CHECK(both.uris() == std::vector<std::string>{"s3://a", "s3://b", "s3://c"});
  CHECK_FALSE(c::all_of({}).met_by({"s3://a"}));
  CHECK(dag::dataset_uri_problem("s3://bucket/key").empty());
  CHECK(dag::dataset_uri_problem("file:///data/x.csv").empty());
  CHECK_FALSE(dag::dataset_uri_problem("orders").empty());
  CHECK_FALSE(dag::dataset_uri_problem("s3://a b").empty());
  CHECK_FALSE(dag::dataset_uri_problem("airflow://x").empty());
}
