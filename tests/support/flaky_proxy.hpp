#pragma once
// A TCP proxy in front of the test's PostgreSQL server, for the store's and the queue's tests of
// connections that break around COMMIT.

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pqxx/pqxx>

namespace dag_test {

/// A TCP proxy between a client (a store, a task queue) and the server that can cut a connection
/// around COMMIT, as a network failure would, or go down altogether. Finds COMMIT by its
/// simple-query text.
class flaky_proxy {
public:
  /// How the next COMMIT is cut.
  enum class cut {
    reply_lost,     ///< COMMIT reaches the server and commits; its reply never comes back
    reply_lost_then_unreachable,  ///< as reply_lost, and connections are refused until `reopen`
    never_arrives,  ///< COMMIT never reaches the server, whose session lingers in its transaction
    never_arrives_then_unreachable,  ///< as never_arrives, and connections are refused until `reopen`
  };

  /// Listens on a free loopback port and relays every connection to the server of `server_url`.
  explicit flaky_proxy(const std::string& server_url) {
    pqxx::connection c{server_url};
    const char* host = c.hostname();
    server_host_ = host != nullptr ? host : "";
    server_port_ = std::stoi(c.port());
    in_addr probe{};
    REQUIRE_MESSAGE(::inet_pton(AF_INET, server_host_.c_str(), &probe) == 1,
                    "the proxy needs DAGRUN_TEST_POSTGRES_URL to name an IPv4 address, not '" << server_host_ << "'");
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), size) == 0);
    REQUIRE(::listen(listener_, 16) == 0);
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size) == 0);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~flaky_proxy() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard lock(mutex_);
    for (auto& t : relays_) t.join();
    for (int fd : lingering_) ::close(fd);
    if (listener_ >= 0) ::close(listener_);
  }
  flaky_proxy(const flaky_proxy&) = delete;
  flaky_proxy& operator=(const flaky_proxy&) = delete;

  /// `database_url` (a database on the server), through the proxy: libpq lets a later query
  /// parameter override the URL's host and port.
  std::string url(const std::string& database_url) const {
    return database_url + (database_url.find('?') == std::string::npos ? '?' : '&') + "host=127.0.0.1&port=" +
           std::to_string(port_);
  }
  /// The port it listens on.
  int port() const { return port_; }
  /// Cuts the next COMMIT that passes, once.
  void arm(cut how) {
    how_ = how;
    armed_ = true;
  }
  /// How many COMMITs were cut.
  int cuts() const { return cuts_; }
  /// How many round trips the relayed connections have made: the server's ReadyForQuery
  /// messages, one at the end of each answer.
  int round_trips() const { return round_trips_; }
  /// Stops listening and cuts every connection: the server is unreachable from now on.
  void go_down() { down_ = true; }
  /// Relays new connections again after a cut::…_then_unreachable.
  void reopen() { refusing_ = false; }

private:
  static bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
      const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
      if (n <= 0) return false;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }

  void accept_loop() {
    while (!stop_) {
      if (down_) {
        ::close(listener_);  // connections are refused from now on
        listener_ = -1;
        return;
      }
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      if (refusing_) {
        ::close(client);
        continue;
      }
      std::lock_guard lock(mutex_);
      relays_.emplace_back([this, client] { relay(client); });
    }
  }

  void relay(int client) {
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(server_port_));
    ::inet_pton(AF_INET, server_host_.c_str(), &address.sin_addr);
    bool keep_server = false;
    if (::connect(server, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
      std::vector<char> buffer(1 << 16);
      constexpr std::string_view commit{"COMMIT\0", 7};
      while (!stop_ && !down_) {
        pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
        if (::poll(p, 2, 50) <= 0) continue;
        if (p[0].revents != 0) {
          const ssize_t n = ::recv(client, buffer.data(), buffer.size(), 0);
          if (n <= 0) break;
          const std::string_view chunk(buffer.data(), static_cast<std::size_t>(n));
          bool expected = true;
          if (chunk.find(commit) != std::string_view::npos && armed_.compare_exchange_strong(expected, false)) {
            ++cuts_;
            if (how_ == cut::reply_lost || how_ == cut::reply_lost_then_unreachable) {
              write_all(server, chunk.data(), chunk.size());
              pollfd reply{server, POLLIN, 0};
              ::poll(&reply, 1, 10000);  // the server replies once it has committed: drop the reply
              if (how_ == cut::reply_lost_then_unreachable) refusing_ = true;
            } else {
              keep_server = true;  // the session waits, in its transaction, for a client that is gone
              if (how_ == cut::never_arrives_then_unreachable) refusing_ = true;
            }
            break;
          }
          if (!write_all(server, chunk.data(), chunk.size())) break;
        }
        if (p[1].revents != 0) {
          const ssize_t n = ::recv(server, buffer.data(), buffer.size(), 0);
          if (n <= 0) break;
          // 'Z', its length (5) and the transaction status end each answer (data that looks alike
          // the tests that count keep away from). Counted before the client can read it.
          constexpr std::string_view ready{"Z\0\0\0\5", 5};
          const std::string_view chunk(buffer.data(), static_cast<std::size_t>(n));
          for (auto at = chunk.find(ready); at != std::string_view::npos; at = chunk.find(ready, at + 1)) ++round_trips_;
          if (!write_all(client, buffer.data(), static_cast<std::size_t>(n))) break;
        }
      }
    }
    ::close(client);
    if (!keep_server) {
      ::close(server);
      return;
    }
    std::lock_guard lock(mutex_);
    lingering_.push_back(server);
  }

  std::string server_host_;
  int server_port_ = 0;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> down_{false};
  std::atomic<bool> refusing_{false};
  std::atomic<bool> armed_{false};
  std::atomic<cut> how_{cut::reply_lost};
  std::atomic<int> cuts_{0};
  std::atomic<int> round_trips_{0};
  std::mutex mutex_;
  std::vector<std::thread> relays_;
  std::vector<int> lingering_;
  std::thread acceptor_;
};

}  // namespace dag_test
