// SPDX-License-Identifier: Apache-2.0
// landjail-proxy's server: validates everything at start-up (config, listen address, CA, trust
// store, audit sinks), raises its descriptor limit and sizes max_connections and the upstream
// pools from it, then runs N workers — one io_context per thread, each with its own TLS
// context and upstream pool, fed by one loopback acceptor in turn — until SIGTERM/SIGINT:
// stop accepting, let requests in flight finish (bounded), flush the audit. The acceptor
// answers connections over max_connections with 503 and never spins when descriptors run
// out (see admission.hpp).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "policy/settings.hpp"
#include "proxy/audit/auditor.hpp"
#include "proxy/server/admission.hpp"
#include "proxy/server/cli.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/upstream.hpp"
#include "proxy/tls/ca.hpp"

namespace lj::proxy {

class Server {
  public:
    /// Everything that can fail at start-up fails here, with a message naming what and why.
    static Result<std::unique_ptr<Server>> create(const ProxyOptions& options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// The address actually listened on ("127.0.0.1:41234").
    std::string address() const;
    /// Serves until a termination signal; returns the exit status.
    int run(std::optional<int> ready_fd);

  private:
    Server() = default;
    /// --event-fd and --clients-fd: the jail's events and its table of clients.
    Status attach_jail(const ProxyOptions& opt);
    /// The budget for `workers` threads under the (raised) descriptor limit; warns when the
    /// limit is low or max_connections is set above what it allows.
    void plan_limits(std::size_t workers);
    /// One worker per thread, each with its own CA instance, trust store and upstream.
    Status build_workers(const ProxyOptions& opt, const std::vector<ResolveOverride>& resolves,
                         const std::optional<std::string>& upstream_ca,
                         const std::string& upstream_ca_label);
    Status listen(const tcp::endpoint& endpoint);
    awaitable<void> accept_loop();
    /// Counts a new connection and hands it to the next worker, or refuses it with 503 when
    /// max_connections are live.
    void admit(tcp::socket socket);
    void refuse_over_cap(tcp::socket socket);
    awaitable<void> linger_refusal(tcp::socket socket);
    /// After a failed accept: sheds the backlog when out of descriptors, warns (once per
    /// interval) and returns how long to wait before accepting again.
    std::chrono::milliseconds on_accept_error(const error_code& ec);
    void shutdown();
    void wait_signal();
    awaitable<void> drain(Worker& worker);

    policy::Settings settings_;
    ProxyShared shared_;
    std::unique_ptr<Auditor> auditor_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unique_ptr<tcp::acceptor> acceptor_;  ///< on worker 0; sockets go to workers in turn
    std::unique_ptr<asio::steady_timer> accept_pause_;  ///< back-off after accept errors
    // Admission (accept loop, worker 0's thread, except connections_ which sessions release).
    FdLimit fd_limit_;
    Budget budget_;
    ConnectionCount connections_;
    SpareFd spare_;
    std::size_t next_worker_ = 0;
    std::size_t lingering_ = 0;  ///< refusals waiting for their client to close
    std::chrono::milliseconds backoff_{0};
    IntervalCounter over_cap_{std::chrono::seconds(10)};
    IntervalCounter accept_failures_{std::chrono::seconds(10)};
    std::uint64_t shed_unreported_ = 0;  ///< taken off the backlog since the last warning
    tcp::endpoint endpoint_;
    asio::signal_set* signals_ = nullptr;  ///< lives in run()
    bool shutting_down_ = false;
    std::unique_ptr<ClientMap> clients_;  ///< --clients-fd (the jail's events: the Auditor's)
};

}  // namespace lj::proxy
