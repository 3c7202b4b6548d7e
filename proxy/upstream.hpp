// SPDX-License-Identifier: Apache-2.0
// Connections to origin servers: name resolution (with --resolve overrides, like curl's),
// connect and TLS handshake under a deadline, and a per-thread pool of idle keep-alive
// connections keyed by scheme://host:port, so that a new client connection (or a new
// intercepted TLS connection) usually reuses an upstream connection instead of paying for a
// TCP and TLS handshake. One Upstream per io_context thread: no locking.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "policy/request.hpp"
#include "policy/result.hpp"
#include "proxy/net.hpp"
#include "proxy/stream.hpp"
#include "proxy/tls_config.hpp"

namespace lj::proxy {

/// `--resolve HOST:PORT:ADDR[:PORT2]`: connections to HOST:PORT go to ADDR (port PORT2 when
/// given, else PORT). ADDR is an IPv4 address or a bracketed IPv6 address.
struct ResolveOverride {
    std::string host;  ///< canonical host text
    std::uint16_t port = 0;
    asio::ip::address address;
    std::uint16_t to_port = 0;
};
Result<ResolveOverride> parse_resolve(std::string_view spec);

/// Why an upstream connection could not be made; `step` is what the 502/504 body names.
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
        std::size_t max_idle_per_key = 128;
        std::size_t max_idle_total = 256;
        std::chrono::seconds max_idle_age{60};
    };

    Upstream(asio::io_context& io, TlsContext& tls, Options options);

    /// A connected stream to scheme://host:port (TLS verified for https), from the pool when
    /// an idle one is alive. Returns nullptr and fills `failure` when it cannot connect.
    awaitable<std::unique_ptr<Stream>> acquire(const std::string& scheme, const policy::Host& host,
                                               std::uint16_t port, UpstreamFailure& failure,
                                               bool& reused);

    /// Gives back a connection whose last response was complete and keep-alive.
    void release(const std::string& scheme, const policy::Host& host, std::uint16_t port,
                 std::unique_ptr<Stream> stream);

    /// Closes every idle connection (shutdown).
    void clear() { idle_.clear(); }

    /// A plain TCP connection (for passthrough tunnels), not pooled.
    awaitable<std::unique_ptr<Stream>> connect_tcp(const policy::Host& host, std::uint16_t port,
                                                   UpstreamFailure& failure);

  private:
    struct Idle {
        std::unique_ptr<Stream> stream;
        std::chrono::steady_clock::time_point since;
    };
    awaitable<std::vector<tcp::endpoint>> resolve(const policy::Host& host, std::uint16_t port,
                                                  UpstreamFailure& failure);
    std::unique_ptr<Stream> take_idle(const std::string& key);

    asio::io_context& io_;
    TlsContext& tls_;
    Options options_;
    std::map<std::string, std::vector<Idle>> idle_;
    std::size_t idle_count_ = 0;
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
