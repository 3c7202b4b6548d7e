// SPDX-License-Identifier: Apache-2.0
// The owners STYLE "RAII" names: lj::UniqueFd for file descriptors and lj::Mbed<T, Init, Free>
// for mbedTLS contexts. No naked close()/..._free() outside these types.
#pragma once

#include <unistd.h>

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

/// Owns one mbedTLS context: Init on construction, Free on destruction.
template <class T, void (*Init)(T*), void (*Free)(T*)>
class Mbed {
  public:
    Mbed() { Init(&ctx_); }
    ~Mbed() { Free(&ctx_); }
    Mbed(const Mbed&) = delete;
    Mbed& operator=(const Mbed&) = delete;
    T* get() { return &ctx_; }

  private:
    T ctx_;
};

}  // namespace lj
