// The webhook notifier against a real HTTP server on loopback.
#include <doctest/doctest.h>

#include <mutex>

#include <nlohmann/json.hpp>

#include <dag/http/server.hpp>
#include <dag/notifiers/webhook.hpp>

TEST_CASE("WebhookNotifier.PostsTheAlertAsJson" * doctest::timeout(30)) {
  std::mutex m;
  std::vector<dag::http_request> got;
  dag::http_server hook("127.0.0.1", 0, [&](const dag::http_request& r) {
    std::lock_guard lock(m);
    got.push_back(r);
    return dag::http_response{200, "text/plain", "ok"};
  });
  const dag::alert a{"retry", "etl", "run-1", "load", 1, "up_for_retry", "HTTP 500", "/logs/x", dag::parse_time("2024-01-01")};
  dag::notifiers::send_webhook(dag::parse_connection_uri("hook", "http://127.0.0.1:" + std::to_string(hook.port()) + "/services/T1/B2"), "", a);
  hook.stop();
  REQUIRE(got.size() == 1);
  CHECK(got[0].method == "POST");
  CHECK(got[0].target == "/services/T1/B2");
  CHECK(got[0].headers["content-type"] == "application/json");
  const auto doc = nlohmann::json::parse(got[0].body);
  CHECK(doc["text"] == "dagrun: task etl.load (try 1, run run-1) is up_for_retry: HTTP 500 — log: /logs/x");
  CHECK(doc["dag_id"] == "etl");
  CHECK(doc["task_id"] == "load");
  CHECK(doc["try_number"] == 1);
  CHECK(doc["state"] == "up_for_retry");
  CHECK(doc["error"] == "HTTP 500");
  CHECK(doc["log_url"] == "/logs/x");
}

TEST_CASE("WebhookNotifier.FailureHidesTheSecretPath" * doctest::timeout(30)) {
  unsigned short port = 0;
  {
    dag::http_server gone("127.0.0.1", 0, [](const dag::http_request&) { return dag::http_response{}; });
    port = gone.port();
  }
  const dag::alert a{"failure", "etl", "run-1", "load", 1, "failed", "", "", dag::parse_time("2024-01-01")};
  try {
    dag::notifiers::send_webhook(dag::parse_connection_uri("hook", "http://127.0.0.1:" + std::to_string(port) + "/services/SECRET123"), "", a);
    FAIL("no error");
  } catch (const dag::error& e) {
    CHECK(std::string(e.what()).starts_with("webhook: Couldn't connect to server"));
    CHECK(std::string(e.what()).find("SECRET123") == std::string::npos);
  }
}
