// SPDX-License-Identifier: Apache-2.0
// One client connection's state, shared by the roles that serve it — the request loop
// (loop.hpp), the CONNECT tunnel (tunnel.hpp) and one exchange (exchange.hpp): the client
// stream and its read buffer, the upstream stream in use, the watchdog that enforces the
// running deadline, and the audit trail. Its writes of the proxy's own answers go through
// send()/refuse(); its audit events through `trail`.
//
// Connection is a template over the worker it runs on, W, which provides:
//   using Stream = …;                    the byte stream to the client and to origins
//   asio::io_context io;                 where the connection's coroutines and timer run
//   const ProxyShared* shared;           policy, timeouts, auditor
//   std::unique_ptr<U> upstream;         U::acquire/release/connect_tcp as Upstream has them
//   std::list<Connection<W>*> sessions;  the live connections (drain, abort)
//   bool draining;                       shutdown: no keep-alive
//   std::unique_ptr<TlsContext> tls;     when Stream is the product's Stream (interception)
// In the product W is Worker (session.hpp); the unit tests use beast::test::stream.
//
// Thread-safety: a Connection belongs to its worker's io_context thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <list>
#include <memory>
#include <utility>

#include "proxy/net.hpp"
#include "proxy/session/relay.hpp"
#include "proxy/session/responses.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/trail.hpp"

namespace lj::proxy {

inline constexpr std::size_t kHeaderLimit = 64 * 1024;  ///< request and response heads

/// What a request handler tells the request loop.
enum class Next { KeepAlive, Close };

/// The deadline running, which decides what a timeout closes: waiting for a request (its
/// head), for the origin's response head, or for bytes of a body or tunnel.
enum class Phase { Request, Upstream, Relay };

/// One timer per connection, re-armed by moving a deadline (no system call per transfer).
/// On expiry it calls `on_expire` once per deadline; it stops with the Watchdog.
class Watchdog {
  public:
    using Clock = std::chrono::steady_clock;

    Watchdog(asio::io_context& io, std::function<void()> on_expire);
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    /// Starts waiting (the waiting coroutine may run once more after the Watchdog is gone).
    void start(asio::io_context& io);

    /// The deadline is now + `timeout`.
    void extend(std::chrono::milliseconds timeout) {
        state_->deadline = Clock::now() + timeout;
        if (state_->deadline < state_->timer.expiry()) {
            state_->timer.expires_at(state_->deadline);  // wakes the watchdog to wait less
        }
    }

  private:
    struct State {
        asio::steady_timer timer;
        Clock::time_point deadline = Clock::time_point::max();
        std::function<void()> on_expire;  ///< cleared when the Watchdog goes
        explicit State(asio::io_context& io) : timer(io, Clock::time_point::max()) {}
    };
    static awaitable<void> wait(std::shared_ptr<State> state);

    std::shared_ptr<State> state_;
};

template <class W>
class Connection {
  public:
    using S = typename W::Stream;

    /// Registers with `worker` for drain() and abort(); `client_port` attributes its events.
    Connection(S client_stream, W& w, std::uint16_t client_port)
        : client(std::move(client_stream)),
          worker(w),
          shared(*w.shared),
          trail(*w.shared, client_port),
          watchdog_(w.io, [this] { on_timeout(); }) {
        worker.sessions.push_back(this);
        self_ = std::prev(worker.sessions.end());
        watchdog_.start(worker.io);
    }
    ~Connection() { worker.sessions.erase(self_); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Shutdown grace period over: close both sides now.
    void abort() {
        client.close();
        if (upstream) {
            upstream->close();
        }
    }
    /// Shutdown: close now if waiting for a request; otherwise finish the current one.
    void drain() {
        if (waiting_for_request) {
            client.close();
        }
    }

    /// Starts `phase` with its deadline `timeout` from now.
    void arm(Phase phase, std::chrono::milliseconds timeout) {
        phase_ = phase;
        timed_out_ = false;
        watchdog_.extend(timeout);
    }
    /// Bytes moved: the idle deadline starts again.
    void extend_idle() { watchdog_.extend(shared.timeouts.idle); }
    /// The current phase's deadline passed (and the watchdog closed what it closes).
    bool timed_out() const { return timed_out_; }

    /// Writes one of the proxy's own responses to the client; false when it could not be
    /// written (the client is gone).
    awaitable<bool> send(Reply res) { co_return !co_await write_message(client, res); }

    /// A request the proxy answers itself: its event to the trail, then the answer.
    awaitable<bool> refuse(Refusal r) {
        trail.record(std::move(r.event));
        co_return co_await send(std::move(r.reply));
    }

    /// Raw bytes both ways between the client and `up` (passthrough tunnel, WebSocket), after
    /// the bytes already read ahead on either side, under the idle deadline.
    awaitable<void> relay_raw(S& up, beast::flat_buffer& up_buf) {
        if (co_await deliver_buffered(client, client_buf, up, up_buf)) {
            co_return;
        }
        arm(Phase::Relay, shared.timeouts.idle);
        co_await relay_both_ways(client, up, [this] { extend_idle(); });
    }

    S client;
    beast::flat_buffer client_buf;  ///< bytes read from the client and not yet used
    W& worker;
    const ProxyShared& shared;
    Trail trail;
    S* upstream = nullptr;             ///< the upstream stream in use (the watchdog closes it)
    bool head_request = false;         ///< the request being answered is HEAD
    bool waiting_for_request = false;  ///< between requests (drain() closes then)

  private:
    /// The watchdog's deadline passed: waiting for the origin's response head, only the
    /// origin is closed (the client gets a 504); otherwise both sides.
    void on_timeout() {
        timed_out_ = true;
        if (phase_ == Phase::Upstream) {
            // While connecting, Upstream's own deadline does the closing.
            if (upstream) {
                upstream->close();
            }
            return;
        }
        abort();
    }

    Watchdog watchdog_;
    Phase phase_ = Phase::Request;
    bool timed_out_ = false;
    typename std::list<Connection*>::iterator self_;
};

}  // namespace lj::proxy
