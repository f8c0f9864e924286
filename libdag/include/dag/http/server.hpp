#pragma once
/// @file A small HTTP/1.1 server for the library's HTTP face (/health, /metrics, /api/v1, the UI),
/// which the daemon or an embedding program serves (dag/http/serve.hpp): one I/O thread that
/// accepts, reads and writes asynchronously with a deadline on each step, keep-alive, and one
/// handler function called on a thread of its own. Boost.Asio and Beast stay inside http_server.cpp.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dag {

/// One request as the handler sees it.
struct http_request {
  std::string method;                          ///< `GET`, `POST`, …
  std::string target;                          ///< path and query, e.g. `/api/v1/dags?limit=10`
  std::map<std::string, std::string> headers;  ///< header fields, names lower-cased
  std::string body;                            ///< the request body (a gate sees it empty: it runs first)
  std::string client;                          ///< the client's address (`127.0.0.1`, `::1`)

  /// The path without the query string.
  std::string path() const { return target.substr(0, target.find('?')); }
  /// A query parameter's value, or empty.
  std::string query(const std::string& name) const {
    const auto q = target.find('?');
    if (q == std::string::npos) return {};
    std::string rest = target.substr(q + 1);
    for (std::size_t start = 0; start <= rest.size();) {
      const std::size_t end = std::min(rest.find('&', start), rest.size());
      const std::string pair = rest.substr(start, end - start);
      const std::size_t eq = pair.find('=');
      if (pair.substr(0, eq) == name) return eq == std::string::npos ? "" : pair.substr(eq + 1);
      start = end + 1;
    }
    return {};
  }
};

/// One response.
struct http_response {
  int status = 200;                                    ///< HTTP status code
  std::string content_type = "application/json";       ///< Content-Type
  std::string body;                                    ///< the body
  std::vector<std::pair<std::string, std::string>> headers = {};  ///< more header fields (e.g. Location)
  /// When set, the body is this file's content instead of `body`, streamed from disk (a log of any
  /// size costs a buffer, not its size in memory); a file that cannot be opened gets 404.
  std::string file = {};
};

/// Handles one request; called on the server's handler thread, one call at a time (so a handler
/// may own a database connection). A slow call delays the requests queued behind it, but not
/// accepting, reading, timing out or refusing other connections, nor express requests.
using http_handler = std::function<http_response(const http_request&)>;

/// Looks at a request whose header has arrived and whose body has not, on the I/O thread: an
/// answer ends the request there (its body is not read, nothing is queued). For what must come
/// before any expensive work, authentication first. It must be quick and thread-safe.
using http_gate = std::function<std::optional<http_response>(const http_request&)>;

/// Chooses the requests (e.g. `GET /health`) that the server hands to a handler thread of their
/// own, one at a time, so that they are answered while the main handler thread is busy. Called on
/// the I/O thread with the header only; the handler must then be safe to call for such a request
/// while it serves another one.
using http_express = std::function<bool(const http_request&)>;

/// The security headers on every answer (docs/http.md): no framing, no type sniffing, and a
/// Content Security Policy that lets pages load only this server's own style sheet.
inline constexpr const char* http_content_security_policy =
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Limits and deadlines of an http_server; the defaults are the ones docs/http.md documents.
struct http_server_options {
  /// How long a connection may wait for the first byte of a request: a new connection's first
  /// request, or the next one on a kept-alive connection. Then it is closed.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(30);
  /// How long a request may take to arrive whole (request line, header and body), counted from its
  /// first byte, so a client trickling bytes is cut however often it sends one.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  /// How long writing one response may take.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
  /// Connections open at once. A new connection beyond it takes the place of one that waits on
  /// its client (idle, or sending a request): of the client address holding the most
  /// connections, the one waiting longest. It is refused only when every connection has a request
  /// in the handler or an answer being written.
  std::size_t max_connections = 256;
  /// Connections open at once from one client address. A new one beyond it takes the place of
  /// that address's connection waiting longest on its client, or is refused when all of them have
  /// a request in progress.
  std::size_t max_connections_per_client = 64;
  /// Bytes of request line and header fields; more gets 431.
  std::size_t header_limit = 8 * 1024;
  /// Bytes of request body; more gets 413.
  std::size_t body_limit = 1024 * 1024;
  http_gate gate;        ///< answers requests before their body is read (none: every request is read)
  http_express express;  ///< requests for the express handler thread (none: all go to the main one)
};

/// An HTTP server listening on one address until destroyed or stopped.
class http_server {
public:
  /// Listens on `host:port` (port 0 picks a free one) and serves with `handler`. Throws
  /// dag::error naming the address when it cannot listen.
  http_server(const std::string& host, unsigned short port, http_handler handler, http_server_options options = {});
  /// Stops: see stop().
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// The port it listens on (the chosen one when 0 was asked for).
  unsigned short port() const;
  /// Stops accepting, closes every connection (requests waiting for the handler are dropped), then
  /// waits for a handler call in progress to return and joins the threads; idempotent.
  void stop();

private:
  struct state;
  std::unique_ptr<state> state_;
};

/// `host:port` split, with a clear error naming `flag` when it is not of that form.
std::pair<std::string, unsigned short> parse_listen_address(const std::string& text, const std::string& flag);

/// `text` with its %XX escapes decoded, and `+` read as a space when `plus_is_space` (form bodies).
std::string url_decoded(const std::string& text, bool plus_is_space = false);

/// The segments of a request path, each decoded (`/dags/a%2Bb` → {"dags", "a+b"}).
std::vector<std::string> path_segments(const std::string& path);

/// Compares two secrets (tokens) without an early exit, so timing does not reveal how much matched.
inline bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (b.empty() ? 0 : b[i % b.size()]));
  return diff == 0;
}

/// True for addresses that only this machine can reach (127.0.0.0/8, ::1, localhost).
bool is_loopback_address(const std::string& host);

}  // namespace dag
