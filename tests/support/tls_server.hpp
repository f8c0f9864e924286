#pragma once
// A real HTTPS server on loopback for tests: a self-signed certificate for 127.0.0.1 made with the
// `openssl` command at test time, served by `openssl s_server -www` (any GET gets 200 and a status
// page). Stopped with its process group when destroyed.

#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <unistd.h>

#include <dag/exec/child_process.hpp>

#include "eventually.hpp"

namespace dag_test {

class tls_server {
public:
  tls_server() {
    static int n = 0;
    dir_ = std::filesystem::temp_directory_path() / ("dagrun-tls-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    dag::process_spec req;
    req.command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                  "-addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem";
    req.working_directory = dir_.string();
    req.log_file = dir_ / "req.log";
    if (dag::child_process::start(req).wait().exit_code != 0) throw std::runtime_error("openssl req failed");
    dag::process_spec serve;
    serve.command = "exec openssl s_server -accept 127.0.0.1:0 -cert cert.pem -key key.pem -www";
    serve.working_directory = dir_.string();
    serve.log_file = dir_ / "server.log";
    child_ = dag::child_process::start(serve);
    waiter_ = std::jthread([this](std::stop_token st) { child_->wait(st); });
    // s_server prints `ACCEPT 127.0.0.1:PORT` once it listens.
    const bool listening = eventually([&] {
      std::ifstream in(dir_ / "server.log");
      std::string line;
      while (std::getline(in, line))
        if (line.starts_with("ACCEPT ")) {
          port_ = static_cast<unsigned short>(std::stoi(line.substr(line.rfind(':') + 1)));
          return true;
        }
      return false;
    }, std::chrono::seconds(20));
    if (!listening) throw std::runtime_error("openssl s_server did not start");
  }
  ~tls_server() {
    waiter_.request_stop();
    waiter_.join();
    std::filesystem::remove_all(dir_);
  }
  tls_server(const tls_server&) = delete;
  tls_server& operator=(const tls_server&) = delete;

  unsigned short port() const { return port_; }
  /// The server's certificate (self-signed, so also the CA that verifies it).
  std::filesystem::path certificate() const { return dir_ / "cert.pem"; }

private:
  std::filesystem::path dir_;
  std::optional<dag::child_process> child_;
  std::jthread waiter_;
  unsigned short port_ = 0;
};

}  // namespace dag_test
