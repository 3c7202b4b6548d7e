// SPDX-License-Identifier: Apache-2.0
// Admission control for the proxy's accept loop: the file descriptor limit (raised to the hard
// limit at start), the budget derived from it (the default max_connections and the size of
// the upstream pools), the count of live client connections across the workers, warnings
// rate-limited to one per interval, and the refusals: a 503 to a connection over
// max_connections, and the spare descriptor that lets the acceptor take a connection off the
// backlog and answer it when the process has run out of descriptors (EMFILE), instead of
// spinning on a listening socket that stays readable.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "policy/result.hpp"
#include "proxy/base/fd.hpp"
#include "proxy/net.hpp"

namespace lj::proxy {

/// The soft RLIMIT_NOFILE before and after raise_fd_limit(), and the hard limit.
struct FdLimit {
    std::uint64_t before = 0;  ///< the soft limit the process started with
    std::uint64_t soft = 0;    ///< the soft limit now
    std::uint64_t hard = 0;
    std::string error;  ///< why setrlimit failed (the limit is then unchanged), else empty
};

/// The most descriptors raise_fd_limit() asks for when the hard limit is higher (or
/// unlimited): Asio uses epoll, so large descriptor numbers cost nothing, but the kernel's fd
/// table of the process grows with them.
inline constexpr std::uint64_t kMaxFdLimit = 1 << 20;

/// Raises the soft RLIMIT_NOFILE to the hard limit (at most kMaxFdLimit). Never lowers it.
FdLimit raise_fd_limit();

/// What the descriptor limit allows. The formula (documented in landjail-proxy(1)):
///   reserved  = 32 + 4 per worker   (stdio, the spare descriptor, the audit sinks, and each
///                                   worker's epoll, timerfd, eventfd and resolver)
///   usable    = limit - reserved
///   pool      = min(256 per worker, usable / 8)   (idle upstream connections, all workers)
///   lingering = min(64, usable / 16)  (refused connections waiting for their client to close)
///   per_conn  = 4                   (client socket, upstream socket, and the pipe pair that
///                                   moves a large plain body with splice(2))
///   fit       = (usable - pool - lingering) / per_conn
///   default max_connections = min(kDefaultMaxConnections, fit), at least 1.
struct Budget {
    std::size_t fit = 0;              ///< connections the descriptors can serve at once
    std::size_t max_connections = 0;  ///< the configured value, else the default
    std::size_t pool_per_worker = 0;  ///< idle upstream connections kept per worker
    std::size_t lingering = 0;        ///< refusals that may wait for their client at once
};

inline constexpr std::size_t kDefaultMaxConnections = 4096;
inline constexpr std::size_t kFdsPerConnection = 4;
inline constexpr std::size_t kMaxIdlePerWorker = 256;
inline constexpr std::size_t kMaxLingering = 64;

/// The budget for `fd_limit` descriptors and `workers` threads; `configured` is the
/// max_connections setting when given (kept as is, even above `fit`). Pure.
Budget plan_budget(std::uint64_t fd_limit, std::size_t workers,
                   std::optional<std::size_t> configured);

/// Live client connections across every worker. Thread-safe (one atomic).
class ConnectionCount {
  public:
    /// Counts one more connection unless `max` are already live; false then.
    bool try_acquire(std::size_t max) {
        if (live_.fetch_add(1, std::memory_order_relaxed) >= max) {
            live_.fetch_sub(1, std::memory_order_relaxed);
            return false;
        }
        return true;
    }
    void release() { live_.fetch_sub(1, std::memory_order_relaxed); }
    std::size_t live() const { return live_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::size_t> live_{0};
};

/// One counted connection: released when destroyed (the session ended). Move-only.
class ConnectionSlot {
  public:
    explicit ConnectionSlot(ConnectionCount* count = nullptr) : count_(count) {}
    ~ConnectionSlot() {
        if (count_) {
            count_->release();
        }
    }
    ConnectionSlot(ConnectionSlot&& other) noexcept
        : count_(std::exchange(other.count_, nullptr)) {}
    ConnectionSlot& operator=(ConnectionSlot&&) = delete;
    ConnectionSlot(const ConnectionSlot&) = delete;
    ConnectionSlot& operator=(const ConnectionSlot&) = delete;

  private:
    ConnectionCount* count_;
};

/// Counts occurrences of one condition and says when to report them: at the first one, then
/// at most once per `interval`, with the number seen since the last report. Not thread-safe.
class IntervalCounter {
  public:
    using Clock = std::chrono::steady_clock;
    explicit IntervalCounter(std::chrono::milliseconds interval) : interval_(interval) {}

    /// Counts `n` occurrences at `now`; returns the count to report now (all those since the
    /// last report), or 0 to stay quiet.
    std::uint64_t note(Clock::time_point now, std::uint64_t n = 1);
    std::uint64_t total() const { return total_; }

  private:
    std::chrono::milliseconds interval_;
    std::optional<Clock::time_point> last_;
    std::uint64_t pending_ = 0;
    std::uint64_t total_ = 0;
};

/// The proxy's answer to a connection over max_connections (HTTP/1.1 503, Retry-After: 1,
/// Connection: close, body "landjail: too many connections (max_connections N)\n").
std::string too_many_connections_response(std::size_t max_connections);
/// The answer to a connection taken off the backlog while out of descriptors (503).
std::string out_of_descriptors_response();

/// Best effort, never blocks: writes `response` to the connected socket `fd`, reads and
/// discards what the client already sent (so that closing sends FIN rather than RST), shuts
/// the connection down and closes it.
void refuse_now(UniqueFd fd, const std::string& response);

/// Writes `response`, shuts the sending side down, and keeps the socket until the client
/// closes or `linger` passes, so that the client reads the answer rather than a reset.
awaitable<void> refuse_gently(tcp::socket socket, std::string response,
                              std::chrono::milliseconds linger);

/// A descriptor kept open (/dev/null) so that one can be freed when the process runs out:
/// the acceptor closes it, accepts and answers a pending connection, and reopens it.
class SpareFd {
  public:
    SpareFd();
    /// Closes the spare; returns false when there was none to free.
    bool release();
    /// Reopens the spare (it may fail while descriptors are short; tried again later).
    void restore();

  private:
    UniqueFd fd_;
};

/// Takes connections off `listener`'s backlog while descriptors are short: frees the spare,
/// accepts one connection (non-blocking) and refuses it with out_of_descriptors_response(),
/// up to `max` times or until no connection is pending. Returns how many were refused.
std::size_t shed_backlog(int listener, SpareFd& spare, std::size_t max);

}  // namespace lj::proxy
