// The daemon's HTTP server on Boost.Beast, synchronous: an accepting thread that polls so it can
// stop, and a thread per connection (an admin endpoint sees a handful of clients: Prometheus,
// a load balancer's health check, a person with curl).
#include <dag/http/server.hpp>

#include <utility>  // before Asio (Boost 1.74 with g++ 12)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <dag/core/error.hpp>

namespace dag {
namespace {

// An admin endpoint serves a handful of clients; a flood of connections must not exhaust the
// threads and descriptors the scheduler's tasks need.
constexpr std::size_t max_connections = 64;
// A client that sends or reads nothing for this long is dropped (slow-header clients included).
constexpr int io_timeout_seconds = 30;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

struct http_server::state {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  http_handler handler;
  std::mutex handler_mutex;  // one handler call at a time

  struct connection {
    tcp::socket socket;
    std::atomic<bool> done{false};
    std::thread thread;
    explicit connection(tcp::socket s) : socket(std::move(s)) {}
  };
  std::mutex connections_mutex;
  std::list<connection> connections;
  std::atomic<bool> stopping{false};
  std::thread accepting;

  void serve(connection& c) {
    try {
      serve_requests(c);
    } catch (const std::exception&) {
      // Out of memory for one request, say: drop this client, keep the server.
    }
    beast::error_code ec;
    c.socket.shutdown(tcp::socket::shutdown_both, ec);
    c.done = true;
  }

  void serve_requests(connection& c) {
    beast::flat_buffer buffer;
    beast::error_code ec;
    while (!stopping) {
      bhttp::request<bhttp::string_body> req;
      bhttp::read(c.socket, buffer, req, ec);
      if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset) break;
      if (ec) {
        // A request we cannot parse gets a 400 and the connection is closed.
        bhttp::response<bhttp::string_body> bad{bhttp::status::bad_request, 11};
        bad.set(bhttp::field::content_type, "application/json");
        bad.body() = R"({"title":"Bad Request","status":400,"detail":"the request could not be parsed"})";
        bad.prepare_payload();
        bhttp::write(c.socket, bad, ec);
        break;
      }
      http_request r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      for (const auto& field : req) r.headers[lower(std::string(field.name_string()))] = std::string(field.value());
      r.body = std::move(req.body());
      http_response out;
      {
        std::lock_guard lock(handler_mutex);
        try {
          out = handler(r);
        } catch (const std::exception& e) {
          out = {500, "application/json", std::string(R"({"title":"Internal Server Error","status":500})")};
        }
      }
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(out.status), req.version()};
      res.set(bhttp::field::server, "dagrun");
      res.set(bhttp::field::content_type, out.content_type);
      for (const auto& [name, value] : out.headers) res.set(name, value);
      res.keep_alive(req.keep_alive());
      // HEAD gets the headers only: a body would be read as the start of the next response.
      if (req.method() != bhttp::verb::head) res.body() = std::move(out.body);
      res.prepare_payload();
      bhttp::write(c.socket, res, ec);
      if (ec || !res.keep_alive()) break;
    }
  }

  void accept_loop() {
    while (!stopping) {
      pollfd fd{acceptor.native_handle(), POLLIN, 0};
      if (::poll(&fd, 1, 200) <= 0) continue;  // wakes at least every 200 ms to see `stopping`
      beast::error_code ec;
      tcp::socket socket(io);
      acceptor.accept(socket, ec);
      if (ec) {
        // Out of descriptors, say: the listening socket stays readable, so do not spin on it.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      const timeval limit{io_timeout_seconds, 0};
      ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
      ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
      std::lock_guard lock(connections_mutex);
      // Threads of finished connections are joined here, so they do not pile up.
      for (auto it = connections.begin(); it != connections.end();) {
        if (it->done) {
          it->thread.join();
          it = connections.erase(it);
        } else {
          ++it;
        }
      }
      if (connections.size() >= max_connections) {
        socket.close(ec);  // too many at once: the client may retry
        continue;
      }
      try {
        auto& c = connections.emplace_back(std::move(socket));
        c.thread = std::thread([this, &c] { serve(c); });
      } catch (const std::exception&) {
        connections.pop_back();  // no thread for it (resources exhausted): drop this client
      }
    }
  }
};

http_server::http_server(const std::string& host, unsigned short port, http_handler handler)
    : state_(std::make_unique<state>()) {
  state_->handler = std::move(handler);
  beast::error_code ec;
  const std::string where = host + ":" + std::to_string(port);
  tcp::resolver resolver(state_->io);
  const auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) throw error("cannot listen on " + where + ": " + ec.message());
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  auto& a = state_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw error("cannot listen on " + where + ": " + ec.message());
  state_->accepting = std::thread([s = state_.get()] { s->accept_loop(); });
}

http_server::~http_server() { stop(); }

unsigned short http_server::port() const { return state_->acceptor.local_endpoint().port(); }

void http_server::stop() {
  if (state_->stopping.exchange(true)) return;
  if (state_->accepting.joinable()) state_->accepting.join();
  beast::error_code ec;
  state_->acceptor.close(ec);
  std::list<state::connection> connections;
  {
    std::lock_guard lock(state_->connections_mutex);
    connections.swap(state_->connections);
  }
  // A connection thread blocked in a read wakes when its socket is shut down.
  for (auto& c : connections) ::shutdown(c.socket.native_handle(), SHUT_RDWR);
  for (auto& c : connections)
    if (c.thread.joinable()) c.thread.join();
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
