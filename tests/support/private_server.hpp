#pragma once
// A PostgreSQL server of a test's own, which it may stop, crash and restart without disturbing
// other tests: while it lives, DAGRUN_TEST_POSTGRES_URL names it, so the databases and sandboxes
// made meanwhile live on it. Stopped and removed however the test ends.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dag/exec/child_process.hpp>

namespace dag_test {

/// Whether a listening socket could bind 127.0.0.1:`port` now.
inline bool port_is_free(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return bound;
}

class private_server {
public:
  private_server()
      : cluster_(std::filesystem::temp_directory_path() / ("dagrun-pg-own-" + std::to_string(::getpid()))),
        script_(std::string(DAG_SOURCE_DIR) + "/scripts/test-postgres.sh") {
    const char* shared = std::getenv("DAGRUN_TEST_POSTGRES_URL");
    REQUIRE_MESSAGE((shared != nullptr && *shared != '\0'),
                    "DAGRUN_TEST_POSTGRES_URL is not set: start a server with scripts/test-postgres.sh start DIR PORT");
    shared_ = shared;
    for (int attempt = 0;; ++attempt) {
      take_port();
      if (sh(script_ + " start " + cluster_.string() + " " + port_ + " --durable") == 0) break;
      REQUIRE_MESSAGE(attempt < 4, "PostgreSQL did not start: " << log());
    }
    ::setenv("DAGRUN_TEST_POSTGRES_URL", url().c_str(), 1);
  }
  ~private_server() {
    sh(script_ + " stop " + cluster_.string());
    ::setenv("DAGRUN_TEST_POSTGRES_URL", shared_.c_str(), 1);
    std::error_code ec;
    std::filesystem::remove_all(cluster_, ec);
    std::filesystem::remove(cluster_.string() + ".log", ec);
    release_port();
  }
  private_server(const private_server&) = delete;
  private_server& operator=(const private_server&) = delete;

  /// Its URL (the `dagrun_test` database).
  std::string url() const { return "postgresql://postgres@127.0.0.1:" + port_ + "/dagrun_test"; }
  // Durable: with synchronous_commit off, a crash forgets commits the server had acknowledged
  // (claims, results), which no client can make up for.
  void start() {
    REQUIRE_MESSAGE(sh(script_ + " start " + cluster_.string() + " " + port_ + " --durable") == 0,
                    "PostgreSQL did not start again on port " << port_ << ": " << log());
  }
  void stop() { REQUIRE(sh(script_ + " stop " + cluster_.string()) == 0); }
  /// `pg_ctl stop -m immediate`: what a crash leaves, recovered on the next start.
  void crash() { REQUIRE(sh(script_ + " crash " + cluster_.string()) == 0); }

private:
  // The server is stopped and started again on the same port while its clients keep its URL, so
  // no other socket may take the port meanwhile. A port the kernel hands out for outgoing
  // connections could be taken by any test's client (or by a client of this very server,
  // connecting to itself while nothing listens), so the port is one below that range, and a lock
  // file keeps the other tests' private servers off it.
  void take_port() {
    release_port();
    unsigned low = 32768;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low;
    REQUIRE_MESSAGE(low > 4096, "the ephemeral port range starts at " << low << ": no room below it for a server");
    std::mt19937 pick(std::random_device{}());
    std::uniform_int_distribution<unsigned> below(std::max(1024u, low - 16384u), low - 1);
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const auto port = static_cast<unsigned short>(below(pick));
      const auto lock = std::filesystem::temp_directory_path() / ("dagrun-pg-port-" + std::to_string(port) + ".lock");
      const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
      if (fd < 0) continue;
      // Held only if the file locked is still the one the path names (a server letting go of the
      // port removes its file while it holds the lock).
      struct stat locked{}, named{};
      if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::fstat(fd, &locked) == 0 && ::stat(lock.c_str(), &named) == 0 &&
          locked.st_ino == named.st_ino && locked.st_dev == named.st_dev && port_is_free(port)) {
        lock_fd_ = fd;
        lock_ = lock;
        port_ = std::to_string(port);
        return;
      }
      ::close(fd);
    }
    FAIL("no free port below the ephemeral range " << low);
  }
  void release_port() {
    if (lock_fd_ < 0) return;
    ::unlink(lock_.c_str());  // while locked: no one else holds a lock on this file meanwhile
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
  std::string log() const {
    std::ifstream in(cluster_.string() + ".log");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  int sh(const std::string& command) const {
    dag::process_spec p;
    p.command = command;
    p.log_file = cluster_.string() + ".log";
    return dag::child_process::start(p).wait().exit_code;
  }
  std::filesystem::path cluster_;
  std::string script_;
  std::string shared_;
  std::string port_;
  int lock_fd_ = -1;
  std::filesystem::path lock_;
};

}  // namespace dag_test
