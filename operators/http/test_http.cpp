// The http operator against real servers on loopback: dag::http_server for HTTP, `openssl
// s_server` with a certificate made at test time for HTTPS; tries run directly and through the
// engine (retries, logs, masking).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <unistd.h>

#include <dag/engine/engine.hpp>
#include <dag/http/server.hpp>
#include <dag/load/check.hpp>
#include <dag/load/yaml_loader.hpp>
#include <dag/operators/builtin.hpp>
#include <dag/operators/http.hpp>

#include "../../tests/support/tls_server.hpp"

using namespace std::chrono_literals;

namespace {

// A loopback HTTP service whose answers the paths choose; it keeps what it received.
struct service {
  std::mutex m;
  std::condition_variable released_cv;
  bool released = false;
  std::vector<dag::http_request> received;  // guarded by m
  int flaky_calls = 0;                       // guarded by m
  dag::http_server server{"127.0.0.1", 0, [this](const dag::http_request& r) { return answer(r); }};

  ~service() {
    release();
    server.stop();
  }
  void release() {
    std::lock_guard lock(m);
    released = true;
    released_cv.notify_all();
  }
  std::vector<dag::http_request> requests() {
    std::lock_guard lock(m);
    return received;
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(server.port()); }

  dag::http_response answer(const dag::http_request& r) {
    std::unique_lock lock(m);
    received.push_back(r);
    const std::string path = r.path();
    if (path == "/ok") return {200, "application/json", R"({"status":"ok","model":{"id":7,"name":"m1"},"ready":false})"};
    if (path == "/flaky") return ++flaky_calls == 1 ? dag::http_response{500, "text/plain", "warming up"} : dag::http_response{200, "text/plain", "fine"};
    if (path == "/missing") return {404, "text/plain", "no such model"};
    if (path == "/created") return {201, "text/plain", "made"};
    if (path == "/auth") {
      const auto a = r.headers.find("authorization");
      return {401, "text/plain", "refused " + (a == r.headers.end() ? std::string("nothing") : a->second)};
    }
    if (path == "/moved") return {302, "text/plain", "", {{"Location", "/ok"}}};
    if (path == "/big") return {200, "text/plain", std::string(100 * 1024, 'x')};
    if (path == "/slow") {
      released_cv.wait_for(lock, 30s, [&] { return released; });
      return {200, "text/plain", "late"};
    }
    return {200, "text/plain", "echo " + r.method + " " + r.target + " " + r.body};
  }
};

// One try's context for connection `uri`, logging into `lines`.
struct http_try {
  dag::task_context ctx;
  std::vector<std::string> lines;
  http_try(const std::string& uri, std::map<std::string, std::string> fields) {
    ctx.fields = std::move(fields);
    ctx.fields["conn_id"] = "api";
    ctx.connection_lookup = [uri](std::string_view) { return std::optional(dag::parse_connection_uri("api", uri)); };
    ctx.log = [this](std::string_view l) { lines.emplace_back(l); };
  }
  dag::operator_result run() { return dag::operators::http::run(dag::task{}, ctx); }
  std::string log() const {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

}  // namespace

TEST_CASE("HttpOperator.GetSucceedsAndTheBodyGoesToXCom" * doctest::timeout(30)) {
  service s;
  http_try t(s.base(), {{"method", "GET"}, {"endpoint", "ok"}});
  auto r = t.run();
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom == R"({"status":"ok","model":{"id":7,"name":"m1"},"ready":false})");
  CHECK(t.lines.front() == "[dagrun] GET " + s.base() + "/ok");
  CHECK(t.lines.at(1).starts_with("[dagrun] HTTP 200 in "));
}

TEST_CASE("HttpOperator.PostSendsJsonOrFormDataWithHeaders" * doctest::timeout(30)) {
  service s;
  http_try json(s.base() + "/api/v1", {{"endpoint", "/echo"}, {"data", R"({"a": 1})"}, {"headers.X-Trace", "t-1"}});
  CHECK(json.run().xcom == "echo POST /api/v1/echo {\"a\": 1}");
  http_try form(s.base(), {{"endpoint", "echo"}, {"data", "a=1&b=2"}, {"method", "PUT"}});
  CHECK(form.run().xcom == "echo PUT /echo a=1&b=2");
  http_try get(s.base(), {{"endpoint", "echo"}, {"data", "limit=5"}, {"method", "GET"}});
  CHECK(get.run().xcom == "echo GET /echo?limit=5 ");
  auto got = s.requests();
  REQUIRE(got.size() == 3);
  CHECK(got[0].headers["content-type"] == "application/json");
  CHECK(got[0].headers["x-trace"] == "t-1");
  CHECK(got[0].headers["user-agent"] == "dagrun");
  CHECK(got[1].headers["content-type"] == "application/x-www-form-urlencoded");
}

TEST_CASE("HttpOperator.AStatusOutsideExpectedFailsTheTry" * doctest::timeout(30)) {
  service s;
  http_try missing(s.base(), {{"method", "GET"}, {"endpoint", "missing"}});
  auto r = missing.run();
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message == "HTTP 404, expected 2xx: no such model");
  CHECK(missing.log().find("[dagrun] HTTP 404, expected 2xx: no such model\n") != std::string::npos);
  http_try listed(s.base(), {{"method", "GET"}, {"endpoint", "missing"}, {"expected_status.0", "200"}, {"expected_status.1", "404"}});
  CHECK(listed.run().outcome == dag::try_outcome::success);
  http_try narrow(s.base(), {{"endpoint", "created"}, {"expected_status.0", "200"}});
  CHECK(narrow.run().message == "HTTP 201, expected 200: made");
}

TEST_CASE("HttpOperator.ResponseCheckAndFilter" * doctest::timeout(30)) {
  service s;
  http_try contains(s.base(), {{"method", "GET"}, {"endpoint", "ok"}, {"response_check", "\"ok\""}});
  CHECK(contains.run().outcome == dag::try_outcome::success);
  http_try absent(s.base(), {{"method", "GET"}, {"endpoint", "ok"}, {"response_check", "broken"}});
  CHECK(absent.run().message == "response_check failed: the response does not contain 'broken'");
  http_try pointer(s.base(), {{"method", "GET"}, {"endpoint", "ok"}, {"response_check", "/model/id"}, {"response_filter", "/model/name"}});
  auto r = pointer.run();
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom == "m1");
  http_try falsy(s.base(), {{"method", "GET"}, {"endpoint", "ok"}, {"response_check", "/ready"}});
  CHECK(falsy.run().message == "response_check failed: /ready is false");
  http_try object(s.base(), {{"method", "GET"}, {"endpoint", "ok"}, {"response_filter", "/model"}});
  CHECK(object.run().xcom == R"({"id":7,"name":"m1"})");
  http_try nothing(s.base(), {{"method", "GET"}, {"endpoint", "ok"}, {"response_filter", "/version"}});
  CHECK(nothing.run().message == "response_filter: the response has nothing at /version");
}

TEST_CASE("HttpOperator.RedirectsAreFollowedUnlessTurnedOff" * doctest::timeout(30)) {
  service s;
  http_try follow(s.base(), {{"method", "GET"}, {"endpoint", "moved"}, {"response_filter", "/status"}});
  CHECK(follow.run().xcom == "ok");
  http_try stay(s.base(), {{"method", "GET"}, {"endpoint", "moved"}, {"follow_redirects", "false"}});
  CHECK(stay.run().message == "HTTP 302, expected 2xx");
}

TEST_CASE("HttpOperator.ALargeBodyIsCappedInXCom" * doctest::timeout(30)) {
  service s;
  http_try t(s.base(), {{"method", "GET"}, {"endpoint", "big"}});
  auto r = t.run();
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom->size() == dag::operators::http::xcom_limit);
  CHECK(r.message == "response capped at 65536 bytes of XCom (102400 received)");
}

TEST_CASE("HttpOperator.AuthComesFromTheConnection" * doctest::timeout(30)) {
  service s;
  const std::string hostport = s.base().substr(7);
  http_try basic("http://etl:pa55word@" + hostport, {{"method", "GET"}, {"endpoint", "auth"}, {"expected_status.0", "401"}});
  CHECK(basic.run().xcom == "refused Basic ZXRsOnBhNTV3b3Jk");  // etl:pa55word
  http_try bearer("http://" + hostport + "/?token=tok-98765", {{"method", "GET"}, {"endpoint", "auth"}, {"expected_status.0", "401"}});
  CHECK(bearer.run().xcom == "refused Bearer tok-98765");
}

TEST_CASE("HttpOperator.TimeoutEndsTheRequestOnTime" * doctest::timeout(30)) {
  service s;
  http_try t(s.base(), {{"method", "GET"}, {"endpoint", "slow"}, {"timeout", "1s"}});
  const auto began = std::chrono::steady_clock::now();
  auto r = t.run();
  const auto took = std::chrono::steady_clock::now() - began;
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message.starts_with("request timed out after 1."));
  CHECK(took < 3s);
  // execution_timeout bounds the request the same way, and says so.
  http_try e(s.base(), {{"method", "GET"}, {"endpoint", "slow"}});
  e.ctx.timeout = 1s;
  CHECK(e.run().message.starts_with("execution_timeout exceeded: request cancelled after 1."));
}

TEST_CASE("HttpOperator.AStopRequestCancelsTheRequest" * doctest::timeout(30)) {
  service s;
  http_try t(s.base(), {{"method", "GET"}, {"endpoint", "slow"}});
  std::stop_source stop;
  t.ctx.stop = stop.get_token();
  std::jthread stopper([&] {
    // Stop once the request is in the server's hands.
    while (s.requests().empty()) std::this_thread::sleep_for(10ms);
    stop.request_stop();
  });
  auto r = t.run();
  CHECK(r.message.starts_with("stopped: the request was cancelled after"));
}

TEST_CASE("HttpOperator.AClosedPortFailsTheTry" * doctest::timeout(30)) {
  unsigned short port = 0;
  {
    service gone;
    port = gone.server.port();
  }
  http_try t("http://127.0.0.1:" + std::to_string(port), {{"method", "GET"}});
  auto r = t.run();
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message.starts_with("Couldn't connect to server"));
}

TEST_CASE("HttpOperator.TlsIsVerifiedAgainstTheConnectionsCaFile" * doctest::timeout(60)) {
  dag_test::tls_server tls;
  const std::string base = "https://127.0.0.1:" + std::to_string(tls.port());
  http_try unknown(base, {{"method", "GET"}});
  auto r = unknown.run();
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message.find("certificate") != std::string::npos);
  http_try trusted(base + "/?ca_file=" + tls.certificate().string(), {{"method", "GET"}, {"response_check", "s_server"}});
  auto ok = trusted.run();
  CHECK(ok.message == "");
  CHECK(ok.outcome == dag::try_outcome::success);
  http_try unchecked(base + "/?verify=false", {{"method", "GET"}});
  CHECK(unchecked.run().outcome == dag::try_outcome::success);
}

TEST_CASE("HttpOperator.FieldsAreCheckedAtLoadTime") {
  const auto catalog = dag::builtin_operators();
  auto problems = [&](const std::string& task_extra) {
    auto r = dag::load_yaml_text("dag_id: t\ntasks:\n  - task_id: a\n    operator: http\n    conn_id: api\n" + task_extra, "dags/t.yaml", catalog);
    std::vector<std::string> out;
    for (const auto& p : r.problems) out.push_back(p.what());
    return out;
  };
  CHECK(problems("    expected_status: [200, 204]\n    response_filter: /data/0\n").empty());
  CHECK(problems("    expected_status: 200\n").empty());
  CHECK(problems("    expected_status: 2xx\n") ==
        std::vector<std::string>{"dags/t.yaml:6: task 'a': expected_status: '2xx' is not an HTTP status (100 to 599)"});
  CHECK(problems("    response_filter: data\n") ==
        std::vector<std::string>{"dags/t.yaml:6: task 'a': response_filter: 'data' is not a JSON pointer (like /data/0/id)"});
  CHECK(problems("    timeout: soon\n").size() == 1);
  // The same checks from C++.
  dag::definition d{"t"};
  d.add_task("a", "http").field("conn_id", "api").field("expected_status", "700");
  auto cpp = dag::check(d, catalog);
  REQUIRE(cpp.size() == 1);
  CHECK(std::string(cpp.front().what()).find("expected_status: '700' is not an HTTP status") != std::string::npos);
}

namespace {
// An engine over a scratch SQLite store, for tries with retries, logs and masking.
struct sandbox {
  std::filesystem::path dir;
  std::unique_ptr<dag::store> db;
  dag::operator_catalog operators = dag::builtin_operators();
  struct fixed_clock final : dag::clock {
    dag::time_point now() const override { return dag::parse_time("2024-06-01T00:00:00Z"); }
  } clock;
  sandbox() {
    dir = std::filesystem::temp_directory_path() / ("dagrun-http-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    db = dag::open_store("sqlite:" + (dir / "dagrun.db").string());
  }
  ~sandbox() { std::filesystem::remove_all(dir); }
  dag::run_key run(dag::definition d, dag::run_state expected) {
    dag::engine_options o;
    o.parallelism = 2;
    o.log_folder = dir / "logs";
    dag::engine eng(*db, operators, clock, o);
    const std::string id = d.id();
    for (const auto& p : dag::check(d, operators)) FAIL_CHECK(p.what());
    eng.set_dags({std::move(d)});
    auto key = eng.create_run(id, dag::run_type::manual, dag::parse_time("2024-01-01"));
    REQUIRE(key);
    CHECK(eng.run_to_completion({*key}).front() == expected);
    return *key;
  }
  static std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
  }
};
}  // namespace

TEST_CASE("HttpOperator.AServerErrorIsRetriedByTheEngine" * doctest::timeout(60)) {
  service s;
  sandbox box;
  box.db->set_connection(dag::parse_connection_uri("api", s.base()));
  dag::definition d{"calls"};
  d.add_task("flaky", "http").field("conn_id", "api").field("endpoint", "flaky").retries(1).retry_delay(0s);
  auto key = box.run(std::move(d), dag::run_state::success);
  auto tries = box.db->tries(key.dag_id, key.run_id, "flaky");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0].state == dag::task_state::up_for_retry);
  CHECK(tries[0].message == "HTTP 500, expected 2xx: warming up");
  CHECK(tries[1].state == dag::task_state::success);
  CHECK(box.db->xcom(key.dag_id, key.run_id, "flaky") == "fine");
}

TEST_CASE("HttpOperator.SecretsAreMaskedInTheLogAndMessage" * doctest::timeout(60)) {
  service s;
  sandbox box;
  const std::string hostport = s.base().substr(7);
  box.db->set_connection(dag::parse_connection_uri("api", "http://etl:pa55word@" + hostport + "/?token=tok-98765"));
  dag::definition d{"masked"};
  // The password reaches the URL (so the log line) through a template; the token comes back in
  // the body that the failure message quotes.
  d.add_task("call", "http").field("conn_id", "api").field("method", "GET").field("endpoint", "auth?key={{ conn.api.password }}");
  auto key = box.run(std::move(d), dag::run_state::failed);
  auto tries = box.db->tries(key.dag_id, key.run_id, "call");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0].message == "HTTP 401, expected 2xx: refused Bearer ***");
  const std::string log = box.read(tries[0].log_path);
  CHECK(log.find("[dagrun] GET " + s.base() + "/auth?key=***\n") != std::string::npos);
  CHECK(log.find("pa55word") == std::string::npos);
  CHECK(log.find("tok-98765") == std::string::npos);
  CHECK(s.requests().front().target == "/auth?key=pa55word");
}
