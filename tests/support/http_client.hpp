#pragma once
// A plain HTTP/1.1 client over loopback for the tests of the daemon's HTTP face (Boost.Beast).

#include <utility>  // before Asio (Boost 1.74 with g++ 12)

#include <cctype>
#include <map>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace dag_test {

/// What came back.
struct http_reply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::string location;  ///< the Location header of a redirect
  std::string set_cookie;  ///< the Set-Cookie header, if any
  std::map<std::string, std::string> headers;  ///< every header field, names lower-cased
};

/// Sends one request to 127.0.0.1:`port` on a fresh connection and reads the reply.
inline http_reply http_call(unsigned short port, const std::string& method, const std::string& target,
                            const std::string& body = "", const std::string& authorization = "",
                            const std::string& cookie = "", const std::string& accept = "",
                            const std::string& from = "127.0.0.1") {
  namespace beast = boost::beast;
  namespace bhttp = boost::beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.open(boost::asio::ip::tcp::v4());
  socket.bind({boost::asio::ip::make_address(from), 0});
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  if (!accept.empty()) req.set(bhttp::field::accept, accept);
  req.set(bhttp::field::host, "127.0.0.1");
  if (!authorization.empty()) req.set(bhttp::field::authorization, authorization);
  if (!cookie.empty()) req.set(bhttp::field::cookie, cookie);
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  bhttp::write(socket, req);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1ull << 32);
  bhttp::read(socket, buffer, parser);
  auto res = parser.release();
  beast::error_code ec;
  socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
  std::map<std::string, std::string> headers;
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers[name] = std::string(field.value());
  }
  return {static_cast<int>(res.result_int()), std::string(res[bhttp::field::content_type]), res.body(),
          std::string(res[bhttp::field::location]), std::string(res[bhttp::field::set_cookie]), std::move(headers)};
}

/// Sends raw bytes and returns what the server answered (for malformed requests).
inline std::string raw_exchange(unsigned short port, const std::string& bytes) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::asio::write(socket, boost::asio::buffer(bytes));
  std::string out;
  boost::beast::error_code ec;
  char chunk[4096];
  for (;;) {
    const std::size_t n = socket.read_some(boost::asio::buffer(chunk), ec);
    if (ec) break;
    out.append(chunk, n);
  }
  return out;
}

}  // namespace dag_test
