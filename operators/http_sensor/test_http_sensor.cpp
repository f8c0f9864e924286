// The HTTP sensor through the engine against a real loopback server: not yet while the service
// answers 503 or its body fails the check, met once both pass.
#include <doctest/doctest.h>

#include <mutex>

#include <dag/http/server.hpp>
#include <dag/load/yaml_loader.hpp>
#include <dag/operators/http_sensor.hpp>

#include "../../tests/support/engine_sandbox.hpp"

namespace {
// Warming up (503), then up but not ready, then ready.
struct model_service {
  std::mutex m;
  int calls = 0;  // guarded by m
  dag::http_server server{"127.0.0.1", 0, [this](const dag::http_request& r) { return answer(r); }};
  ~model_service() { server.stop(); }
  dag::http_response answer(const dag::http_request& r) {
    std::lock_guard lock(m);
    if (r.path() != "/models/7" || r.method != "GET") return {404, "text/plain", "no"};
    ++calls;
    if (calls == 1) return {503, "text/plain", "warming up"};
    if (calls == 2) return {200, "application/json", R"({"ready":false,"version":"v3"})"};
    return {200, "application/json", R"({"ready":true,"version":"v3"})"};
  }
  int count() {
    std::lock_guard lock(m);
    return calls;
  }
};
}  // namespace

TEST_CASE("HttpSensor.PokesUntilTheStatusAndTheCheckPass" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("http-sensor");
  model_service svc;
  s.db->set_connection(dag::parse_connection_uri("registry", "http://127.0.0.1:" + std::to_string(svc.server.port())));
  dag::definition d{"deploy"};
  d.add_task("wait_ready", "http_sensor")
      .field("conn_id", "registry")
      .field("endpoint", "models/7")
      .field("response_check", "/ready")
      .field("response_filter", "/version")
      .field("request_timeout", "5s")
      .field("poke_interval", "1s")
      .field("timeout", "1m");
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(std::move(d))});
  const auto key = *eng.create_run("deploy", dag::run_type::manual, dag::parse_time("2024-01-01"));
  CHECK(eng.run_to_completion({key}).front() == dag::run_state::success);
  CHECK(svc.count() == 3);
  CHECK(s.db->xcom("deploy", key.run_id, "wait_ready") == "v3");
  const std::string log = s.log_of(key, "wait_ready");
  CHECK(log.find("[dagrun] poke 1: not yet (HTTP 503, expected 2xx: warming up)") != std::string::npos);
  CHECK(log.find("[dagrun] poke 2: not yet (response_check failed: ") != std::string::npos);
  CHECK(log.find("[dagrun] sensor condition met on poke 3") != std::string::npos);
}

TEST_CASE("HttpSensor.TakesTheHttpFieldsWithARequestTimeout") {
  const auto catalog = dag::builtin_operators();
  const std::string head = "dag_id: h\ntasks:\n  - task_id: wait\n    operator: http_sensor\n    conn_id: api\n";
  CHECK(dag::load_yaml_text(head + "    endpoint: health\n    request_timeout: 10s\n    timeout: 1h\n    mode: reschedule\n",
                            "dags/h.yaml", catalog)
            .problems.empty());
  auto bad = dag::load_yaml_text(head + "    expected_status: [700]\n", "dags/h.yaml", catalog);
  REQUIRE(bad.problems.size() == 1);
  CHECK(std::string(bad.problems[0].what()) == "dags/h.yaml:6: task 'wait': expected_status: '700' is not an HTTP status (100 to 599)");
}
