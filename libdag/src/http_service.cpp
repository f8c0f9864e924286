/// @file http_service (dag/http/serve.hpp): a face on a server.

#include <dag/http/serve.hpp>

#include <utility>

#include <dag/core/error.hpp>
#include <dag/engine/engine.hpp>

namespace dag {

http_service::http_service(const serve_options& options, http_face_options face_options, metrics_registry& metrics,
                           const clock& now) {
  const auto [host, port] = parse_listen_address(options.listen, options.listen_name);
  // Without a token the API would take changes from anyone who can reach the address.
  if (!is_loopback_address(host) && !options.token && options.users.empty())
    throw usage_error(options.listen_name + " " + options.listen +
                      ": the API would accept changes from the network without a token; set DAGRUN_API_TOKEN "
                      "or listen on 127.0.0.1");
  face_options.token = options.token;
  face_options.users = options.users;
  face_options.max_page_size = options.max_page_size;
  face_options.heartbeat_limit = options.heartbeat_limit;
  face_ = std::make_unique<http_face>(std::move(face_options), metrics, now);
  server_ = std::make_unique<http_server>(host, port, [face = face_.get()](const http_request& r) { return face->handle(r); },
                                          face_->server_options(options.server));
}

namespace {

// What the face of an engine reads: the engine's store (unless told another URL) and the queue.
http_face_options reads_of(const engine& e, const serve_options& options) {
  // An engine handed a store does not know its URL: guessing the default would serve (and let
  // the API change) another database.
  if (options.store_url.empty() && !e.owns_store())
    throw usage_error("serving an engine that was handed its store needs serve_options.store_url (the same database)");
  http_face_options reads;
  reads.db_url = options.store_url.empty() ? e.options().store_url : options.store_url;
  reads.queue_url = options.queue_url;
  return reads;
}

}  // namespace

http_service::http_service(engine& e, const serve_options& options)
    : http_service(options, reads_of(e, options), e.metrics(), e.time_source()) {
  face_->follow_dags([&e] { return e.definitions(); });
}

// The server goes first: its threads call into the face.
http_service::~http_service() { server_.reset(); }

unsigned short http_service::port() const { return server_->port(); }

std::map<std::string, std::string> parse_api_users(const std::string& text, const std::string& what) {
  std::map<std::string, std::string> users;
  std::size_t position = 0;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string entry = text.substr(start, end - start);
    ++position;
    const std::size_t colon = entry.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == entry.size())
      throw usage_error(what + ": entry " + std::to_string(position) + " is not NAME:PASSWORD");
    users[entry.substr(0, colon)] = entry.substr(colon + 1);
    start = end + 1;
  }
  return users;
}

std::size_t parse_page_size(const std::string& text, const std::string& what) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos || std::stoul(text) < 1 ||
      std::stoul(text) > 10000)
    throw usage_error(what + ": expected a whole number from 1 to 10000, got '" + text + "'");
  return std::stoul(text);
}

}  // namespace dag
