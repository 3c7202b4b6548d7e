// SPDX-License-Identifier: Apache-2.0
// lj::Mbed<T, Init, Free> owns one mbedTLS context (STYLE "RAII"): no naked ..._free().
#pragma once

namespace lj {

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
