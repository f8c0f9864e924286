#pragma once
// A PostgreSQL server of a test's own, which it may stop, crash and restart without disturbing
// other tests: while it lives, DAGRUN_TEST_POSTGRES_URL names it, so the databases and sandboxes
// made meanwhile live on it. Stopped and removed however the test ends.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dag/exec/child_process.hpp>

namespace dag_test {

/// A loopback port no socket is bound to at the moment of asking.
inline unsigned short free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t size = sizeof a;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &size) == 0;
  ::close(fd);
  REQUIRE(bound);
  return ntohs(a.sin_port);
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
    // A port the kernel has free now. A fixed one lies in the range the kernel hands out to
    // outgoing connections, so a test's own client socket could hold it: if the server still
    // cannot bind it, take another.
    for (int attempt = 0;; ++attempt) {
      port_ = std::to_string(free_port());
      if (sh(script_ + " start " + cluster_.string() + " " + port_ + " --durable") == 0) break;
      REQUIRE_MESSAGE(attempt < 4, "PostgreSQL did not start; see " << cluster_.string() << ".log");
    }
    ::setenv("DAGRUN_TEST_POSTGRES_URL", url().c_str(), 1);
  }
  ~private_server() {
    sh(script_ + " stop " + cluster_.string());
    ::setenv("DAGRUN_TEST_POSTGRES_URL", shared_.c_str(), 1);
    std::error_code ec;
    std::filesystem::remove_all(cluster_, ec);
    std::filesystem::remove(cluster_.string() + ".log", ec);
  }
  private_server(const private_server&) = delete;
  private_server& operator=(const private_server&) = delete;

  /// Its URL (the `dagrun_test` database).
  std::string url() const { return "postgresql://postgres@127.0.0.1:" + port_ + "/dagrun_test"; }
  // Durable: with synchronous_commit off, a crash forgets commits the server had acknowledged
  // (claims, results), which no client can make up for.
  void start() { REQUIRE(sh(script_ + " start " + cluster_.string() + " " + port_ + " --durable") == 0); }
  void stop() { REQUIRE(sh(script_ + " stop " + cluster_.string()) == 0); }
  /// `pg_ctl stop -m immediate`: what a crash leaves, recovered on the next start.
  void crash() { REQUIRE(sh(script_ + " crash " + cluster_.string()) == 0); }

private:
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
};

}  // namespace dag_test
