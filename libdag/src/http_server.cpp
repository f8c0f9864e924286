// The library's HTTP server (the daemon's or an embedding program's) on Boost.Asio and Beast: one
// I/O thread runs every connection asynchronously, each read and write under a deadline, so idle or
// slow clients cost a socket and a few buffers, never a thread, and cannot hold up anyone else.
// Handler calls run one at a time on a thread of their own (a handler may own a database connection
// and take its time), fed by a queue; the answer is posted back to the I/O thread to be written.
#include <dag/http/server.hpp>

#include <utility>  // before Asio (Boost 1.74 with g++ 12)

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <dag/core/error.hpp>

namespace dag {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

// After its last answer a connection stops sending and reads (and drops) what the client still
// sends, for at most this long: closing with unread bytes would reset the connection, and the
// client could lose the answer (a 413 sent before the body it is still writing).
constexpr auto linger_limit = std::chrono::seconds(2);
// Accepting fails when the process is out of descriptors; the listening socket then stays
// readable, so the next try waits this long rather than spin.
constexpr auto accept_retry_delay = std::chrono::milliseconds(100);

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The header fields every answer carries, the server's own errors included.
template <class Body>
void set_common_fields(bhttp::response<Body>& res) {
  res.set(bhttp::field::server, "dagrun");
  res.set("X-Frame-Options", "DENY");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Content-Security-Policy", http_content_security_policy);
  res.set("Referrer-Policy", "same-origin");
}

// An error answer: a problem document, as the handler's own errors are.
bhttp::response<bhttp::string_body> problem(bhttp::status status, const std::string& detail) {
  bhttp::response<bhttp::string_body> res{status, 11};
  set_common_fields(res);
  res.set(bhttp::field::content_type, "application/json");
  res.body() = R"({"type":"about:blank","title":")" + std::string(bhttp::obsolete_reason(status)) +
               R"(","status":)" + std::to_string(static_cast<unsigned>(status)) + R"(,"detail":")" + detail + R"("})";
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

}  // namespace

struct http_server::state {
  struct connection;
  struct job {
    http_request request;
    std::shared_ptr<connection> from;
  };

  // Handler calls are queued on a lane and made one at a time by its thread: the main lane, and
  // the express lane for requests the options' `express` picks.
  struct lane {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<job> jobs;
    bool stopped = false;
    std::thread thread;
  };

  explicit state(http_handler h, http_server_options o) : options(std::move(o)), handler(std::move(h)) {}

  // Owned by the I/O thread once it runs (stop() reaches them by posting to it).
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  const http_server_options options;
  std::list<std::shared_ptr<connection>> connections;
  bool closing = false;

  // The handler's side.
  const http_handler handler;
  lane main_lane;
  lane express_lane;

  unsigned short port = 0;
  std::atomic<bool> stopped{false};
  std::thread io_thread;

  void accept_next();
  void admit(tcp::socket socket);
  bool make_room(const asio::ip::address& newcomer, bool same_client_only);
  void submit(lane& to, std::shared_ptr<connection> from, http_request request);
  void run_io();
  void run_handler(lane& from);
  static void stop_lane(lane& l);
  void shut();
};

// One client connection, driven by completion handlers on the I/O thread. It lives while an
// operation of its own is pending, or its request is with the handler, or it is listed.
struct http_server::state::connection : std::enable_shared_from_this<connection> {
  enum class phase { idle, reading, handling, writing, lingering };

  connection(state& s, tcp::socket socket, asio::ip::address from)
      : server(s), stream(std::move(socket)), peer(std::move(from)) {}

  state& server;
  beast::tcp_stream stream;
  const asio::ip::address peer;
  beast::flat_buffer buffer;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser;
  bhttp::response<bhttp::string_body> response;
  // A file answer, streamed: each piece written under the write deadline.
  std::optional<bhttp::response<bhttp::file_body>> file_response;
  std::optional<bhttp::response_serializer<bhttp::file_body>> file_writer;
  http_request request;  // the one being read or answered
  phase now = phase::idle;
  steady::time_point since = steady::now();
  std::list<std::shared_ptr<connection>>::iterator entry;
  bool listed = false;

  void enter(phase p) {
    now = p;
    since = steady::now();
  }

  // Waiting on the client (to open a request, finish it, or go away) rather than on the server.
  bool waits_for_client() const { return now == phase::idle || now == phase::reading || now == phase::lingering; }

  // Under the idle deadline until a request's first byte (already there when pipelined), then
  // under the request deadline until it is whole.
  void await_request() {
    parser.emplace();
    constexpr std::size_t most = std::numeric_limits<std::uint32_t>::max();  // Beast's type for it
    parser->header_limit(static_cast<std::uint32_t>(std::min(server.options.header_limit, most)));
    parser->body_limit(server.options.body_limit);
    if (buffer.size() > 0) return read_request();
    enter(phase::idle);
    stream.expires_after(server.options.idle_timeout);
    stream.async_read_some(buffer.prepare(1024), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->buffer.commit(n);
      if (ec) return self->close();
      self->read_request();
    });
  }

  // The header first (the gate may answer without the body), then the body; one deadline for both.
  void read_request() {
    enter(phase::reading);
    stream.expires_after(server.options.request_timeout);
    bhttp::async_read_header(stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->guarded([&] { self->on_header(ec); });
    });
  }

  template <class F>
  void guarded(F&& step) {
    try {
      step();
    } catch (const std::exception&) {
      close();  // out of memory for this request: drop this client, keep the server
    }
  }

  // False (and the connection answered or closed) when reading failed.
  bool read_ok(beast::error_code ec) {
    // Gone, cut by a deadline, or closed by the server: nothing to answer.
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == beast::error::timeout) {
      close();
      return false;
    }
    if (ec == bhttp::error::body_limit)
      answer(problem(bhttp::status::payload_too_large,
                     "the request body is over " + std::to_string(server.options.body_limit) + " bytes"));
    else if (ec == bhttp::error::header_limit)
      answer(problem(bhttp::status::request_header_fields_too_large,
                     "the request line and header are over " + std::to_string(server.options.header_limit) + " bytes"));
    else if (ec)
      answer(problem(bhttp::status::bad_request, "the request could not be parsed"));
    return !ec;
  }

  void on_header(beast::error_code ec) {
    if (!read_ok(ec)) return;
    auto& req = parser->get();
    const auto hosts = req.equal_range(bhttp::field::host);
    if (std::distance(hosts.first, hosts.second) > 1)
      return answer(problem(bhttp::status::bad_request, "the request has more than one Host header"));
    request = {};
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.client = peer.to_string();
    for (const auto& field : req) request.headers[lower(std::string(field.name_string()))] = std::string(field.value());
    if (server.options.gate) {
      if (auto refused = server.options.gate(request)) {
        parser->get().keep_alive(false);  // the body (if any) stays unread: this is the last answer
        return respond(std::move(*refused));
      }
    }
    if (parser->is_done()) return on_request({});
    bhttp::async_read(stream, buffer, *parser, [self = shared_from_this()](beast::error_code body_ec, std::size_t) {
      self->guarded([&] { self->on_request(body_ec); });
    });
  }

  void on_request(beast::error_code ec) {
    if (!read_ok(ec)) return;
    request.body = std::move(parser->get().body());
    enter(phase::handling);
    stream.expires_never();  // nothing is pending on the socket until the answer comes back
    const bool express = server.options.express && server.options.express(request);
    server.submit(express ? server.express_lane : server.main_lane, shared_from_this(), std::move(request));
  }

  // The handler's answer, back on the I/O thread.
  void respond(http_response out) {
    if (!listed) return;  // closed meanwhile (the server is stopping)
    try {
      const auto& req = parser->get();
      if (!out.file.empty() && req.method() != bhttp::verb::head) return send_file(std::move(out));
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(out.status), req.version()};
      set_common_fields(res);
      res.set(bhttp::field::content_type, out.content_type);
      for (const auto& [name, value] : out.headers) res.set(name, value);
      res.keep_alive(req.keep_alive());
      // HEAD gets the headers only: a body would be read as the start of the next response.
      if (req.method() != bhttp::verb::head) res.body() = std::move(out.body);
      res.prepare_payload();
      answer(std::move(res));
    } catch (const std::exception&) {
      close();
    }
  }

  void send_file(http_response out) {
    const auto& req = parser->get();
    bhttp::file_body::value_type file;
    beast::error_code ec;
    file.open(out.file.c_str(), beast::file_mode::scan, ec);
    if (ec) return answer(problem(bhttp::status::not_found, "the file of this answer is gone"));
    file_response.emplace(static_cast<bhttp::status>(out.status), req.version());
    auto& res = *file_response;
    set_common_fields(res);
    res.set(bhttp::field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) res.set(name, value);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(file);
    res.prepare_payload();
    file_writer.emplace(res);
    enter(phase::writing);
    write_file_piece();
  }

  // Each piece under the write deadline: a long file is cut only when the client stops reading.
  void write_file_piece() {
    stream.expires_after(server.options.write_timeout);
    bhttp::async_write_some(stream, *file_writer, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      if (!self->file_writer->is_done()) return self->write_file_piece();
      const bool last = self->file_response->need_eof();
      self->file_writer.reset();
      self->file_response.reset();
      if (last) return self->linger();
      self->await_request();
    });
  }

  void answer(bhttp::response<bhttp::string_body> res) {
    response = std::move(res);
    enter(phase::writing);
    stream.expires_after(server.options.write_timeout);
    bhttp::async_write(stream, response, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      if (self->response.need_eof()) return self->linger();
      self->response = {};
      self->await_request();
    });
  }

  // The last answer is out: say so (FIN), and drop what the client still sends until it closes.
  void linger() {
    enter(phase::lingering);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.expires_after(linger_limit);
    drain();
  }

  void drain() {
    buffer.clear();
    stream.async_read_some(buffer.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  // Idempotent; pending operations end with operation_aborted and come back here.
  void close() {
    if (listed) {
      listed = false;
      server.connections.erase(entry);  // callers hold their own owner of `this`
    }
    stream.close();
  }
};

void http_server::state::accept_next() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (closing) return;
    if (ec) {
      accept_retry.expires_after(accept_retry_delay);
      accept_retry.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && !closing) accept_next();
      });
      return;
    }
    try {
      admit(std::move(socket));
    } catch (const std::exception&) {
      // Out of memory for this client: it is dropped (its socket closes), the others go on.
    }
    accept_next();
  });
}

void http_server::state::admit(tcp::socket socket) {
  beast::error_code ec;
  const auto peer = socket.remote_endpoint(ec).address();
  if (ec) return;  // already gone
  // Returning closes `socket`: refused.
  const auto from_peer = static_cast<std::size_t>(
      std::count_if(connections.begin(), connections.end(), [&](const auto& c) { return c->peer == peer; }));
  if (from_peer >= options.max_connections_per_client && !make_room(peer, true)) return;
  if (connections.size() >= options.max_connections && !make_room(peer, false)) return;
  auto c = std::make_shared<connection>(*this, std::move(socket), peer);
  c->entry = connections.insert(connections.end(), c);
  c->listed = true;
  c->await_request();
}

// Closes the connection waiting longest on its client, among those of the address holding the
// most connections (the newcomer counted), or among the newcomer's own when `same_client_only`:
// a client hoarding connections loses its own first, and many clients behind one proxy still
// share the whole cap. False when every candidate is busy with a request.
bool http_server::state::make_room(const asio::ip::address& newcomer, bool same_client_only) {
  std::map<asio::ip::address, std::size_t> held{{newcomer, 1}};
  for (const auto& c : connections) ++held[c->peer];
  connection* victim = nullptr;
  for (const auto& c : connections) {
    if (!c->waits_for_client() || (same_client_only && c->peer != newcomer)) continue;
    if (victim == nullptr || held[c->peer] > held[victim->peer] ||
        (held[c->peer] == held[victim->peer] && c->since < victim->since))
      victim = c.get();
  }
  if (victim == nullptr) return false;
  victim->shared_from_this()->close();
  return true;
}

void http_server::state::submit(lane& to, std::shared_ptr<connection> from, http_request request) {
  {
    std::lock_guard lock(to.mutex);
    if (to.stopped) return;
    to.jobs.push_back({std::move(request), std::move(from)});
  }
  to.ready.notify_one();
}

void http_server::state::stop_lane(lane& l) {
  {
    std::lock_guard lock(l.mutex);
    l.stopped = true;
  }
  l.ready.notify_all();
}

void http_server::state::run_io() {
  for (;;) {
    try {
      io.run();
      return;  // out of work: shut() ran
    } catch (const std::exception&) {
      // A completion handler ran out of memory: its connection is lost, the server goes on.
    }
  }
}

void http_server::state::run_handler(lane& from) {
  for (;;) {
    job next;
    {
      std::unique_lock lock(from.mutex);
      from.ready.wait(lock, [&] { return from.stopped || !from.jobs.empty(); });
      if (from.stopped) return;
      next = std::move(from.jobs.front());
      from.jobs.pop_front();
    }
    http_response out;
    try {
      out = handler(next.request);
    } catch (...) {
      out = {500, "application/json", R"({"type":"about:blank","title":"Internal Server Error","status":500})"};
    }
    try {
      asio::post(io, [c = std::move(next.from), out = std::move(out)]() mutable { c->respond(std::move(out)); });
    } catch (const std::exception&) {
      // Out of memory: this client gets no answer; stop() closes its connection.
    }
  }
}

// On the I/O thread: no new connections and every open one closed. The loop then runs out of work
// and returns once the handlers already queued have run (not io.stop(): a connection accepted
// but not yet admitted would stay open inside its queued handler until the context is destroyed).
void http_server::state::shut() {
  closing = true;
  beast::error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  while (!connections.empty()) {
    const auto c = connections.front();  // owned here while close() unlists it
    c->close();
  }
}

http_server::http_server(const std::string& host, unsigned short port, http_handler handler, http_server_options options)
    : state_(std::make_unique<state>(std::move(handler), options)) {
  auto& s = *state_;
  beast::error_code ec;
  const std::string where = host + ":" + std::to_string(port);
  tcp::resolver resolver(s.io);
  const auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) throw error("cannot listen on " + where + ": " + ec.message());
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  auto& a = s.acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) s.port = a.local_endpoint(ec).port();
  if (ec) throw error("cannot listen on " + where + ": " + ec.message());
  s.accept_next();
  try {
    s.main_lane.thread = std::thread([&s] { s.run_handler(s.main_lane); });
    if (s.options.express) s.express_lane.thread = std::thread([&s] { s.run_handler(s.express_lane); });
    s.io_thread = std::thread([&s] { s.run_io(); });
  } catch (...) {
    stop();
    throw;
  }
}

http_server::~http_server() { stop(); }

unsigned short http_server::port() const { return state_->port; }

void http_server::stop() {
  auto& s = *state_;
  if (s.stopped.exchange(true)) return;
  // No new handler calls; then every client let go, so that none waits on an answer that will
  // not come; then the call in progress (if any) waited for: it may use what its owner destroys
  // next.
  state::stop_lane(s.main_lane);
  state::stop_lane(s.express_lane);
  if (s.io_thread.joinable()) {
    asio::post(s.io, [&s] { s.shut(); });
    s.io_thread.join();
  }
  for (auto* l : {&s.main_lane, &s.express_lane})
    if (l->thread.joinable()) l->thread.join();
}

std::pair<std::string, unsigned short> parse_listen_address(const std::string& text, const std::string& flag) {
  const auto bad = [&] {
    return usage_error(flag + ": expected HOST:PORT (e.g. 127.0.0.1:8080), got '" + text + "'");
  };
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) throw bad();
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = text.substr(colon + 1);
  if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw bad();
  const int port = std::stoi(port_text);
  if (port > 65535) throw usage_error(flag + ": port " + port_text + " is out of range (0-65535)");
  return {host, static_cast<unsigned short>(port)};
}

std::string url_decoded(const std::string& s, bool plus_is_space) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::vector<std::string> path_segments(const std::string& path) {
  std::vector<std::string> out;
  for (std::size_t start = 1; start <= path.size();) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    if (end > start) out.push_back(url_decoded(path.substr(start, end - start)));
    start = end + 1;
  }
  return out;
}

bool is_loopback_address(const std::string& host) {
  if (host == "localhost") return true;
  // An address is judged as an address; any other name might resolve anywhere.
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

}  // namespace dag
