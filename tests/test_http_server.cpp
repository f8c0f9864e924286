// The HTTP server itself over real loopback sockets: deadlines for idle, trickling and slow-reading
// clients, the connection cap, keep-alive, one handler call at a time off the I/O thread, and
// stopping while a handler blocks.
#include <doctest/doctest.h>

#include <utility>  // before Asio (Boost 1.74 with g++ 12)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <dag/http/server.hpp>

#include "support/eventually.hpp"
#include "support/http_client.hpp"

using namespace std::chrono_literals;
using dag_test::eventually;
using dag_test::http_call;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

// A client connection whose reads have deadlines, from a chosen loopback address.
struct client {
  asio::io_context io;
  tcp::socket socket{io};
  beast::flat_buffer buffer;

  explicit client(unsigned short port, const char* from = "127.0.0.1") {
    socket.open(tcp::v4());
    socket.bind({asio::ip::make_address(from), 0});
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
  }

  void send(const std::string& bytes) { asio::write(socket, asio::buffer(bytes)); }

  // The next response, or nothing when none came whole within `limit`. `head`: the answer to a
  // HEAD request (headers only, whatever Content-Length says).
  std::optional<bhttp::response<bhttp::string_body>> reply(steady::duration limit = 10s, bool head = false) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.skip(head);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    bool done = false;
    beast::error_code result;
    bhttp::async_read(socket, buffer, parser, [&](beast::error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    if (!finish(done, limit) || result) return std::nullopt;
    return parser.release();
  }

  // True when the server closes the connection within `limit` (what it sends before is dropped).
  bool closed_within(steady::duration limit) {
    const auto deadline = steady::now() + limit;
    for (;;) {
      char chunk[4096];
      bool done = false;
      beast::error_code result;
      socket.async_read_some(asio::buffer(chunk), [&](beast::error_code ec, std::size_t) {
        result = ec;
        done = true;
      });
      if (!finish(done, deadline - steady::now())) return false;
      if (result) return result == asio::error::eof || result == asio::error::connection_reset;
    }
  }

private:
  // Runs the pending operation for at most `limit`; false (and the operation cancelled) when it
  // did not end in time.
  bool finish(const bool& done, steady::duration limit) {
    io.restart();
    io.run_for(std::max(limit, steady::duration::zero()));
    if (done) return true;
    beast::error_code ignored;
    socket.cancel(ignored);
    io.restart();
    io.run();
    return false;
  }
};

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}

// A handler that answers "METHOD TARGET", holds calls to /slow until opened, and counts calls
// and how many ran at once.
struct gated_handler {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = false;
  int held = 0;
  std::vector<std::string> seen;
  std::atomic<int> calls{0};
  std::atomic<int> active{0};
  std::atomic<int> most_active{0};
  std::chrono::milliseconds work{0};  // how long each call takes, to widen any overlap
  std::string file;                   // what /file answers with

  dag::http_response operator()(const dag::http_request& r) {
    const int now = ++active;
    int most = most_active;
    while (now > most && !most_active.compare_exchange_weak(most, now)) {
    }
    ++calls;
    {
      std::unique_lock lock(mutex);
      seen.push_back(r.target);
      if (r.target == "/slow") {
        ++held;
        changed.notify_all();
        changed.wait(lock, [this] { return open; });
      }
    }
    if (work.count() > 0) std::this_thread::sleep_for(work);
    std::string body = r.method + " " + r.target;
    if (r.target == "/big") body = std::string(64u << 20, 'x');
    if (r.target == "/size") body = std::to_string(r.body.size());
    if (r.target == "/client") body = r.client;
    --active;
    dag::http_response out{200, "text/plain", body};
    if (r.target == "/file") out.file = file;
    return out;
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    changed.notify_all();
  }
  int held_calls() {
    std::lock_guard lock(mutex);
    return held;
  }
  std::vector<std::string> targets() {
    std::lock_guard lock(mutex);
    return seen;
  }
};

struct served {
  gated_handler handler;
  std::unique_ptr<dag::http_server> server;
  explicit served(dag::http_server_options options = {}) {
    server = std::make_unique<dag::http_server>("127.0.0.1", 0, [this](const dag::http_request& r) { return handler(r); },
                                                options);
  }
  ~served() {
    handler.release();  // a test that failed early may have left a call held
    server.reset();
  }
  unsigned short port() const { return server->port(); }
};

bool health_answers(unsigned short port) {
  try {
    return http_call(port, "GET", "/health").status == 200;
  } catch (const std::exception&) {
    return false;  // refused
  }
}

// The fastest of five answers to /health, or nothing if one was refused. A stalled server makes
// every one of them slow; a machine busy with other work (sanitizers, parallel tests) can make
// any single one slow, so one request's time alone would make the test flaky.
std::optional<steady::duration> fastest_health(unsigned short port) {
  std::optional<steady::duration> fastest;
  for (int i = 0; i < 5; ++i) {
    const auto start = steady::now();
    if (!health_answers(port)) return std::nullopt;
    const auto took = steady::now() - start;
    if (!fastest || took < *fastest) fastest = took;
  }
  return fastest;
}

}  // namespace

TEST_CASE("HttpServer.DefaultsAreTheDocumentedOnes") {
  const dag::http_server_options d;
  CHECK(d.idle_timeout == 30s);
  CHECK(d.request_timeout == 30s);
  CHECK(d.write_timeout == 30s);
  CHECK(d.max_connections == 256);
  CHECK(d.max_connections_per_client == 64);
  CHECK(d.header_limit == 8 * 1024);
  CHECK(d.body_limit == 1024 * 1024);
}

TEST_CASE("HttpServer.IdleConnectionsDoNotBlockHealth" * doctest::timeout(60)) {
  served s;
  std::vector<std::unique_ptr<client>> idle;
  // 200 clients (each loopback address is a client of its own), one idle connection each.
  std::vector<std::string> addresses;
  for (int i = 0; i < 200; ++i) addresses.push_back("127.0.1." + std::to_string(i + 1));
  for (const auto& a : addresses) idle.push_back(std::make_unique<client>(s.port(), a.c_str()));
  const auto took = fastest_health(s.port());
  REQUIRE(took);
  MESSAGE("/health beside 200 idle connections took " << std::chrono::duration<double, std::milli>(*took).count() << " ms");
  CHECK(*took < 100ms);
  // They are all still served, not dropped to make room.
  idle.back()->send(get("/after"));
  CHECK(idle.back()->reply()->body() == "GET /after");
  idle.front()->send(get("/first"));
  CHECK(idle.front()->reply()->body() == "GET /first");
}

TEST_CASE("HttpServer.OneClientAddressHoldsAtMostItsShareOfConnections" * doctest::timeout(60)) {
  served s;
  client other(s.port(), "127.0.0.2");
  std::vector<std::unique_ptr<client>> hoard;
  for (int i = 0; i < 200; ++i) hoard.push_back(std::make_unique<client>(s.port()));
  // Far below the overall cap (256), the address's 64 are its limit: its oldest made room.
  CHECK(hoard.front()->closed_within(10s));
  const auto took = fastest_health(s.port());
  REQUIRE(took);
  CHECK(*took < 100ms);
  hoard.back()->send(get("/newest"));
  CHECK(hoard.back()->reply()->body() == "GET /newest");
  other.send(get("/client"));
  CHECK(other.reply()->body() == "127.0.0.2");  // the other client kept its connection
}

TEST_CASE("HttpServer.ExpressRequestsAreAnsweredWhileTheHandlerIsBusy" * doctest::timeout(60)) {
  dag::http_server_options o;
  o.express = [](const dag::http_request& r) { return r.target == "/health"; };
  served s(o);
  client slow(s.port());
  slow.send(get("/slow"));
  REQUIRE(eventually([&] { return s.handler.held_calls() == 1; }, 10s));
  const auto took = fastest_health(s.port());  // the main handler thread is still held
  REQUIRE(took);
  CHECK(*took < 100ms);
  s.handler.release();
  CHECK(slow.reply()->body() == "GET /slow");
}

TEST_CASE("HttpServer.AGateAnswersBeforeTheBodyIsRead" * doctest::timeout(60)) {
  dag::http_server_options o;
  o.gate = [](const dag::http_request& r) -> std::optional<dag::http_response> {
    if (r.target != "/private" || r.headers.count("authorization")) return std::nullopt;
    return dag::http_response{401, "text/plain", "who are you?"};
  };
  served s(o);
  // The header announces a megabyte that never comes: the answer does not wait for it.
  client c(s.port());
  c.send("POST /private HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n");
  const auto r = c.reply(5s);
  REQUIRE(r);
  CHECK(r->result_int() == 401);
  CHECK(r->body() == "who are you?");
  CHECK(c.closed_within(10s));  // the unread body ends the connection
  client allowed(s.port());
  allowed.send("POST /private HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: x\r\nContent-Length: 3\r\n\r\nabc");
  CHECK(allowed.reply()->body() == "POST /private");
  CHECK(s.handler.calls == 1);
}

TEST_CASE("HttpServer.EveryAnswerCarriesTheSecurityHeaders" * doctest::timeout(60)) {
  served s;
  client c(s.port());
  c.send(get("/page"));
  const auto handled = c.reply();
  c.send("NOT HTTP\r\n\r\n");
  const auto refused = c.reply();
  REQUIRE(handled);
  REQUIRE(refused);
  CHECK(refused->result_int() == 400);
  for (const auto* r : {&*handled, &*refused}) {
    CHECK((*r)["X-Frame-Options"] == "DENY");
    CHECK((*r)["X-Content-Type-Options"] == "nosniff");
    CHECK(std::string((*r)["Content-Security-Policy"]).find("frame-ancestors 'none'") != std::string::npos);
    CHECK(std::string((*r)["Content-Security-Policy"]).find("default-src 'none'") != std::string::npos);
  }
}

TEST_CASE("HttpServer.FileAnswersAreStreamedFromDisk" * doctest::timeout(60)) {
  served s;
  const auto path = std::filesystem::temp_directory_path() / ("dagrun-file-answer-" + std::to_string(::getpid()));
  std::string content;
  for (int i = 0; content.size() < (20u << 20); ++i) content += "line " + std::to_string(i) + "\n";
  std::ofstream(path, std::ios::binary) << content;
  s.handler.file = path.string();
  client c(s.port());
  c.send(get("/file"));
  const auto r = c.reply(30s);
  REQUIRE(r);
  CHECK(r->result_int() == 200);
  CHECK(r->body().size() == content.size());
  CHECK(r->body() == content);
  c.send(get("/after"));  // kept alive after a file
  CHECK(c.reply()->body() == "GET /after");
  std::filesystem::remove(path);
  // A file gone by the time it is sent: 404, not a broken connection.
  client gone(s.port());
  gone.send(get("/file"));
  CHECK(gone.reply()->result_int() == 404);
}

TEST_CASE("HttpServer.AtTheCapANewConnectionTakesTheLongestIdleOnesPlace" * doctest::timeout(60)) {
  dag::http_server_options o;
  o.max_connections = 16;
  served s(o);
  std::vector<std::unique_ptr<client>> idle;
  for (int i = 0; i < 100; ++i) idle.push_back(std::make_unique<client>(s.port()));
  CHECK(health_answers(s.port()));
  CHECK(idle.front()->closed_within(10s));  // the oldest made room
  idle.back()->send(get("/newest"));
  CHECK(idle.back()->reply()->body() == "GET /newest");
}

TEST_CASE("HttpServer.AClientHoardingConnectionsLosesItsOwnFirst" * doctest::timeout(60)) {
  dag::http_server_options o;
  o.max_connections = 8;
  served s(o);
  client other(s.port(), "127.0.0.2");  // the oldest connection, but its address holds only this one
  std::vector<std::unique_ptr<client>> hoard;
  for (int i = 0; i < 40; ++i) hoard.push_back(std::make_unique<client>(s.port()));
  CHECK(hoard.front()->closed_within(10s));
  other.send(get("/other"));
  const auto r = other.reply();
  REQUIRE(r);
  CHECK(r->body() == "GET /other");
}

TEST_CASE("HttpServer.IdleConnectionsAreClosedAfterTheIdleTimeout" * doctest::timeout(60)) {
  dag::http_server_options o;
  o.idle_timeout = 300ms;
  served s(o);
  auto start = steady::now();
  client fresh(s.port());
  CHECK(fresh.closed_within(10s));
  CHECK(steady::now() - start >= 300ms);
  // A kept-alive connection after its answer, too.
  client kept(s.port());
  kept.send(get("/one"));
  REQUIRE(kept.reply());
  start = steady::now();
  CHECK(kept.closed_within(10s));
  CHECK(steady::now() - start >= 250ms);  // the timer started just before the answer was read
}

TEST_CASE("HttpServer.AClientTricklingARequestIsCutAtTheRequestDeadline" * doctest::timeout(60)) {
  dag::http_server_options o;
  o.idle_timeout = 10s;  // each byte comes well within it: only the whole-request deadline can cut
  o.request_timeout = 500ms;
  served s(o);
  const std::string request = get("/trickled", "X-Pad: " + std::string(400, 'a') + "\r\n");
  std::atomic<std::size_t> sent{0};
  std::atomic<bool> cut{false};
  steady::duration cut_after{};
  std::thread trickler([&] {
    client slow(s.port());
    const auto start = steady::now();
    for (char byte : request) {
      beast::error_code ec;
      asio::write(slow.socket, asio::buffer(&byte, 1), ec);
      if (ec) {
        cut_after = steady::now() - start;
        cut = true;
        return;
      }
      ++sent;
      std::this_thread::sleep_for(20ms);  // the pace of the trickle, not a synchronisation
    }
  });
  REQUIRE(eventually([&] { return sent > 5; }, 10s));
  const auto start = steady::now();
  CHECK(health_answers(s.port()));
  CHECK(steady::now() - start < 500ms);
  trickler.join();
  CHECK(cut);
  CHECK(sent < request.size());
  CHECK(cut_after >= 500ms);
  CHECK(cut_after < 5s);
  CHECK(s.handler.targets() == std::vector<std::string>{"/health"});
}

TEST_CASE("HttpServer.ASlowHandlerHoldsNoOneElseUp" * doctest::timeout(60)) {
  dag::http_server_options o;
  o.idle_timeout = 300ms;
  served s(o);
  client slow(s.port());
  slow.send(get("/slow"));
  REQUIRE(eventually([&] { return s.handler.held_calls() == 1; }, 10s));
  // Meanwhile new connections are accepted and read: a request the server answers itself (it
  // cannot be parsed) is answered, and an idle connection is timed out.
  client bad(s.port());
  bad.send("NOT HTTP AT ALL\r\n\r\n");
  const auto refused = bad.reply(10s);
  REQUIRE(refused);
  CHECK(refused->result_int() == 400);
  client idle(s.port());
  CHECK(idle.closed_within(10s));
  // A request for the handler waits its turn, with no deadline while it waits.
  client queued(s.port());
  queued.send(get("/queued"));
  s.handler.release();
  CHECK(slow.reply()->body() == "GET /slow");
  CHECK(queued.reply()->body() == "GET /queued");
  CHECK(s.handler.targets() == std::vector<std::string>{"/slow", "/queued"});
}

TEST_CASE("HttpServer.StoppingClosesConnectionsAndWaitsForTheHandlerCallInProgress" * doctest::timeout(60)) {
  served s;
  client slow(s.port());
  slow.send(get("/slow"));
  REQUIRE(eventually([&] { return s.handler.held_calls() == 1; }, 10s));
  client queued(s.port());
  queued.send(get("/queued"));
  client idle(s.port());
  auto stopping = std::async(std::launch::async, [&] { s.server.reset(); });
  CHECK(idle.closed_within(10s));
  CHECK(queued.closed_within(10s));
  CHECK(slow.closed_within(10s));
  CHECK(stopping.wait_for(0s) == std::future_status::timeout);  // the held call has not returned
  s.handler.release();
  CHECK(stopping.wait_for(10s) == std::future_status::ready);
  CHECK(s.handler.targets() == std::vector<std::string>{"/slow"});  // the queued request was dropped
}

TEST_CASE("HttpServer.KeepsAConnectionAliveForSeveralRequests" * doctest::timeout(60)) {
  served s;
  client c(s.port());
  c.send(get("/a"));
  CHECK(c.reply()->body() == "GET /a");
  c.send("HEAD /b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  const auto head = c.reply(10s, true);
  REQUIRE(head);
  CHECK(head->result_int() == 200);
  CHECK(head->body().empty());
  c.send(get("/c"));
  CHECK(c.reply()->body() == "GET /c");  // nothing of a HEAD body came before it
  c.send(get("/d") + get("/e"));        // pipelined
  CHECK(c.reply()->body() == "GET /d");
  CHECK(c.reply()->body() == "GET /e");
  c.send(get("/last", "Connection: close\r\n"));
  CHECK(c.reply()->body() == "GET /last");
  CHECK(c.closed_within(10s));
  CHECK(s.handler.calls == 6);
}

TEST_CASE("HttpServer.HandlerCallsNeverOverlap" * doctest::timeout(60)) {
  served s;
  s.handler.work = 1ms;
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      client kept(s.port());
      for (int i = 0; i < 10; ++i) {
        const std::string target = "/" + std::to_string(t) + "/" + std::to_string(i);
        if (i % 2 == 0) {
          if (http_call(s.port(), "GET", target).body == "GET " + target) ++answered;
        } else {
          kept.send(get(target));
          const auto r = kept.reply();
          if (r && r->body() == "GET " + target) ++answered;
        }
      }
    });
  for (auto& t : clients) t.join();
  CHECK(answered == 80);
  CHECK(s.handler.calls == 80);
  CHECK(s.handler.most_active == 1);
}

TEST_CASE("HttpServer.OversizedOrAmbiguousRequestsGetTheirOwnStatus" * doctest::timeout(60)) {
  served s;
  {
    client c(s.port());
    c.send("POST /size HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\n\r\n" + std::string(1u << 20, 'b'));
    CHECK(c.reply()->body() == "1048576");  // the limit itself is allowed
  }
  {
    // The whole body is sent before the answer is read: the server reads and drops it, so the
    // 413 is not lost to a reset connection.
    client c(s.port());
    c.send("POST /size HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2097152\r\n\r\n" + std::string(2u << 20, 'b'));
    const auto r = c.reply();
    REQUIRE(r);
    CHECK(r->result_int() == 413);
    CHECK(r->body().find("over 1048576 bytes") != std::string::npos);
    CHECK(c.closed_within(10s));
  }
  {
    client c(s.port());
    c.send(get("/h", "X-Pad: " + std::string(9000, 'a') + "\r\n"));
    const auto r = c.reply();
    REQUIRE(r);
    CHECK(r->result_int() == 431);
  }
  {
    client c(s.port());
    c.send(get("/" + std::string(9000, 'u')));  // the request line counts too
    const auto r = c.reply();
    REQUIRE(r);
    CHECK(r->result_int() == 431);
  }
  {
    client c(s.port());
    c.send("GET /h HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n");
    const auto r = c.reply();
    REQUIRE(r);
    CHECK(r->result_int() == 400);
    CHECK(r->body().find("more than one Host header") != std::string::npos);
  }
  CHECK(s.handler.calls == 1);
}

TEST_CASE("HttpServer.AClientThatDoesNotReadItsAnswerIsCutAtTheWriteDeadline" * doctest::timeout(60)) {
  dag::http_server_options o;
  o.write_timeout = 300ms;
  o.max_connections = 1;  // while the answer is being written, no one else gets in
  served s(o);
  client reader(s.port());
  reader.send(get("/big"));  // 64 MiB, more than the socket buffers hold: never read
  REQUIRE(eventually([&] { return s.handler.calls == 1; }, 10s));
  CHECK(eventually([&] { return health_answers(s.port()); }, 10s));
  CHECK(reader.closed_within(10s));
}
