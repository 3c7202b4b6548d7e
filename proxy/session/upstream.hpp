// SPDX-License-Identifier: Apache-2.0
// Connections to origin servers: name resolution (with --resolve overrides, like curl's),
// connect and TLS handshake under a deadline, and a per-thread pool of idle keep-alive
// connections keyed by scheme://host:port, so that a new client connection (or a new
// intercepted TLS connection) usually reuses an upstream connection instead of paying for a
// TCP and TLS handshake. The pool watches every idle connection: one the origin closes (or
// that receives anything unasked) is closed and dropped at once, not left in CLOSE-WAIT, and
// one idle for max_idle_age is closed by a timer. One Upstream per io_context thread: no
// locking.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "policy/request.hpp"
#include "policy/result.hpp"
#include "proxy/base/resolve.hpp"
#include "proxy/net.hpp"
#include "proxy/tls/stream.hpp"
#include "proxy/tls/tls_config.hpp"

namespace lj::proxy {

/// Why an upstream connection could not be made; `step` is what the 502/504 body names.
/// Idle connections kept per scheme://host:port by the whole process (landjail-proxy(1)); the
/// server divides it among its workers.
inline constexpr std::size_t kMaxIdlePerHost = 16;

struct UpstreamFailure {
    std::string step;    ///< "resolve", "connect", "tls"
    std::string detail;  ///< e.g. "Connection refused", "certificate verification failed: …"
    bool timed_out = false;
};

class Upstream {
  public:
    struct Options {
        std::vector<ResolveOverride> resolve;
        std::chrono::milliseconds connect_timeout{30000};
        std::size_t max_idle_per_key = kMaxIdlePerHost;
        std::size_t max_idle_total = 256;
        std::chrono::seconds max_idle_age{60};
    };

    Upstream(asio::io_context& io, TlsContext& tls, Options options);

    /// A connected stream to scheme://host:port (TLS verified for https), from the pool when
    /// an idle one is alive. Returns nullptr and fills `failure` when it cannot connect.
    awaitable<std::unique_ptr<Stream>> acquire(const std::string& scheme, const policy::Host& host,
                                               std::uint16_t port, UpstreamFailure& failure,
                                               bool& reused);

    /// Gives back a connection whose last response was complete and keep-alive. It is
    /// closed instead when the pool is full for its key or in all, or after clear().
    void release(const std::string& scheme, const policy::Host& host, std::uint16_t port,
                 std::unique_ptr<Stream> stream);

    /// Closes every idle connection and pools no more (shutdown), so that nothing of the
    /// pool keeps the io_context running.
    void clear();

    /// Idle connections in the pool now (tests, diagnostics).
    std::size_t idle_count() const { return idle_count_; }

    /// A plain TCP connection (for passthrough tunnels), not pooled.
    awaitable<std::unique_ptr<Stream>> connect_tcp(const policy::Host& host, std::uint16_t port,
                                                   UpstreamFailure& failure);

  private:
    using Clock = std::chrono::steady_clock;
    struct Idle {
        std::unique_ptr<Stream> stream;
        Clock::time_point since;
        std::uint64_t id = 0;  ///< names the entry to its watch
    };
    awaitable<std::vector<tcp::endpoint>> resolve(const policy::Host& host, std::uint16_t port,
                                                  UpstreamFailure& failure);
    std::unique_ptr<Stream> take_idle(const std::string& key);
    /// Waits for the idle connection `id` to become readable (EOF, reset, or bytes nobody
    /// asked for) and drops it then; cancelled when the connection is taken.
    void watch(const std::string& key, std::uint64_t id, Stream& stream);
    void drop(const std::string& key, std::uint64_t id);
    /// Closes the connections idle for max_idle_age, then waits for the next one to expire.
    void arm_sweep(Clock::time_point at);
    void sweep();

    asio::io_context& io_;
    TlsContext& tls_;
    /// --resolve overrides with their addresses parsed once (the host, its port, where to).
    struct Override {
        std::string host;
        std::uint16_t port = 0;
        asio::ip::address address;
        std::uint16_t to_port = 0;
    };
    Options options_;
    std::vector<Override> overrides_;
    std::map<std::string, std::vector<Idle>> idle_;  ///< oldest first in each list
    std::size_t idle_count_ = 0;
    std::uint64_t next_id_ = 0;
    asio::steady_timer sweep_timer_;
    bool sweep_armed_ = false;
    bool stopped_ = false;
};

/// Runs `op` (an awaitable) and closes/cancels via `cancel` when `timeout` passes first;
/// `timed_out` tells which happened.
class Deadline {
  public:
    Deadline(asio::any_io_executor ex, std::chrono::milliseconds timeout,
             std::function<void()> on_expire);
    ~Deadline();
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;
    bool expired() const { return state_->expired; }

  private:
    struct State {
        asio::steady_timer timer;
        std::function<void()> on_expire;
        bool expired = false;
        explicit State(asio::any_io_executor ex) : timer(std::move(ex)) {}
    };
    std::shared_ptr<State> state_;
};

}  // namespace lj::proxy
