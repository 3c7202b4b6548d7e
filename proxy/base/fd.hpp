// SPDX-License-Identifier: Apache-2.0
// File descriptors (STYLE "RAII"): lj::UniqueFd owns one, and the fd I/O helpers both programs
// use. No naked close() outside UniqueFd.
#pragma once

#include <unistd.h>

#include <string_view>
#include <utility>

namespace lj {

/// A move-only file descriptor, closed on destruction (close is never retried on EINTR).
class UniqueFd {
  public:
    explicit UniqueFd(int fd = -1) : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

  private:
    int fd_;
};

/// Writes all of `data` to `fd`, retrying after EINTR and partial writes; a socket is written
/// with send(MSG_NOSIGNAL), so a dead peer never raises SIGPIPE. Returns 0 or the errno of
/// the call that failed (EIO when a write makes no progress).
int write_all(int fd, std::string_view data, bool is_socket = false);

}  // namespace lj
