// File descriptors owned, private to libdag: a child's pipes and log, and the eventfd through
// which a stop request wakes a poll loop (a child's, child_process.cpp; a wait for a notice,
// pg_connection.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <stop_token>
#include <utility>

#include <sys/eventfd.h>
#include <unistd.h>

namespace dag::detail {

/// Owns one file descriptor until it is released.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~unique_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

/// An eventfd that a request of `stop` writes to, for a poll loop to wake on: `fd()` is -1 when
/// `stop` can never be requested, or no eventfd could be had (the loop then looks at `stop` now
/// and then). The callback (run by the requesting thread) is destroyed before the descriptor
/// (declaration order), and its destructor waits for a running callback.
class stop_wakeup {
public:
  explicit stop_wakeup(std::stop_token stop) {
    if (!stop.stop_possible()) return;
    fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (fd_.get() >= 0) on_stop_.emplace(std::move(stop), writer{fd_.get()});
  }
  int fd() const noexcept { return fd_.get(); }

private:
  struct writer {
    int fd;
    void operator()() const noexcept {
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto n = ::write(fd, &one, sizeof one);
    }
  };
  unique_fd fd_;
  std::optional<std::stop_callback<writer>> on_stop_;
};

}  // namespace dag::detail
