#pragma once
// A small SMTP server on loopback for tests: it accepts every mail (no TLS, no auth) and keeps
// what it received. One connection at a time, on a thread of its own.

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace dag_test {

struct received_mail {
  std::string from;             // MAIL FROM address
  std::vector<std::string> to;  // RCPT TO addresses
  std::string data;             // header and body, as sent (CRLF lines, no final dot)
};

class smtp_sink {
public:
  smtp_sink() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener_, 8) != 0)
      throw std::runtime_error("smtp_sink: cannot listen");
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::jthread([this](std::stop_token st) { serve(st); });
  }
  ~smtp_sink() {
    thread_.request_stop();
    thread_.join();
    ::close(listener_);
  }
  smtp_sink(const smtp_sink&) = delete;
  smtp_sink& operator=(const smtp_sink&) = delete;

  unsigned short port() const { return port_; }
  std::vector<received_mail> mails() {
    std::lock_guard lock(mutex_);
    return mails_;
  }

private:
  // Waits up to 100 ms for `fd` to be readable, so a stop request is seen.
  static bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 100) > 0;
  }

  void serve(std::stop_token st) {
    while (!st.stop_requested()) {
      if (!readable(listener_)) continue;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      talk(fd, st);
      ::close(fd);
    }
  }

  static void say(int fd, const std::string& line) {
    const std::string out = line + "\r\n";
    (void)!::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  }

  static std::string address_in(const std::string& line) {
    const auto open = line.find('<'), close = line.find('>');
    return open == std::string::npos || close == std::string::npos ? std::string() : line.substr(open + 1, close - open - 1);
  }

  void talk(int fd, std::stop_token st) {
    say(fd, "220 sink ESMTP");
    std::string buffer;
    received_mail mail;
    bool in_data = false;
    while (!st.stop_requested()) {
      const auto eol = buffer.find("\r\n");
      if (eol == std::string::npos) {
        if (!readable(fd)) continue;
        char chunk[4096];
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return;
        buffer.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      const std::string line = buffer.substr(0, eol);
      buffer.erase(0, eol + 2);
      if (in_data) {
        if (line == ".") {
          in_data = false;
          {
            std::lock_guard lock(mutex_);
            mails_.push_back(mail);
          }
          mail = {};
          say(fd, "250 queued");
        } else {
          mail.data += (line.starts_with("..") ? line.substr(1) : line) + "\r\n";
        }
        continue;
      }
      const std::string verb = line.substr(0, 4);
      if (verb == "EHLO" || verb == "HELO") say(fd, "250 sink");
      else if (verb == "MAIL") mail.from = address_in(line), say(fd, "250 ok");
      else if (verb == "RCPT") mail.to.push_back(address_in(line)), say(fd, "250 ok");
      else if (verb == "DATA") in_data = true, say(fd, "354 go ahead");
      else if (verb == "QUIT") return say(fd, "221 bye");
      else say(fd, "250 ok");
    }
  }

  int listener_ = -1;
  unsigned short port_ = 0;
  std::mutex mutex_;
  std::vector<received_mail> mails_;
  std::jthread thread_;  // last: started once the members above exist
};

}  // namespace dag_test
