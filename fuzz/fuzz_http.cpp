// libFuzzer target: the HTTP request parser and everything a request meets before and after it,
// end to end: the bytes go over loopback to a real http_server serving a real http_face (with a
// token, over a SQLite file), and the answer is read until the server closes.
#include <utility>  // before Asio (Boost 1.74 with g++ 12)

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <dag/core/time.hpp>
#include <dag/http/face.hpp>
#include <dag/http/server.hpp>
#include <dag/metrics/registry.hpp>
#include <dag/store/store.hpp>

namespace {

struct served {
  dag::system_clock clock;
  dag::metrics_registry metrics;
  std::unique_ptr<dag::http_face> face;
  std::unique_ptr<dag::http_server> server;
  served() {
    const auto dir = std::filesystem::temp_directory_path() / ("dagrun-fuzz-http-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string db = "sqlite:" + (dir / "dagrun.db").string();
    dag::open_store(db);
    face = std::make_unique<dag::http_face>(dag::http_face_options{db, "", std::string("fuzz-token"), std::chrono::seconds(30)},
                                            metrics, clock);
    dag::http_server_options o;
    o.idle_timeout = o.request_timeout = o.write_timeout = std::chrono::milliseconds(500);
    server = std::make_unique<dag::http_server>("127.0.0.1", 0, [this](const dag::http_request& r) { return face->handle(r); },
                                                face->server_options(o));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static served s;
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect({asio::ip::make_address("127.0.0.1"), s.server->port()}, ec);
  if (ec) return 0;
  asio::write(socket, asio::buffer(data, size), ec);
  socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);  // the request ends here
  char chunk[4096];
  while (!ec) socket.read_some(asio::buffer(chunk), ec);  // until the server closes
  return 0;
}
