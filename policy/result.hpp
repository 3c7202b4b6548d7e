// SPDX-License-Identifier: Apache-2.0
// lj::Error, lj::Result<T> and lj::Status: the one success-or-error shape of the project
// (policy and the ground floor above it). Nothing in policy/ throws across its API; every
// fallible function returns a Result that holds either the value or an Error with a message a
// user can act on (and, for config errors, file:line:col), or a Status when it has no value.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace lj {

/// A user-facing error. `file`/`line`/`column` are set for errors located in a config file
/// (line and column are 1-based; 0 means unknown).
struct Error {
    std::string message;
    std::string file;
    int line = 0;
    int column = 0;

    /// "file:line:col: message" when located, else just the message.
    std::string what() const {
        if (file.empty()) {
            return message;
        }
        std::string out = file;
        if (line > 0) {
            out += ':' + std::to_string(line);
            if (column > 0) {
                out += ':' + std::to_string(column);
            }
        }
        return out + ": " + message;
    }
};

/// Either a T or an Error (std::expected is C++23).
template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
    Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

/// Success or an Error, for an operation without a value: `return {};` on success.
template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

    bool ok() const { return !error_; }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return *error_; }

  private:
    std::optional<Error> error_;
};
using Status = Result<void>;

/// Shorthand for returning an unlocated error.
inline Error make_error(std::string message) {
    return Error{std::move(message), {}, 0, 0};
}

}  // namespace lj
