// SPDX-License-Identifier: Apache-2.0
// landjail-proxy's server: validates everything at start-up (config, listen address, CA, trust
// store, audit sinks), then runs N workers — one io_context per thread, each with its own
// TLS context and upstream pool, fed by one loopback acceptor in turn — until
// SIGTERM/SIGINT: stop accepting, let requests in flight finish (bounded), flush the audit.
#pragma once

#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "policy/settings.hpp"
#include "proxy/audit.hpp"
#include "proxy/ca.hpp"
#include "proxy/options.hpp"
#include "proxy/session.hpp"
#include "proxy/upstream.hpp"

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
    Result<bool> attach_jail(const ProxyOptions& opt);
    /// One worker per thread, each with its own CA instance, trust store and upstream.
    Result<bool> build_workers(const ProxyOptions& opt,
                               const std::vector<ResolveOverride>& resolves,
                               const std::optional<std::string>& upstream_ca,
                               const std::string& upstream_ca_label);
    Result<bool> listen(const tcp::endpoint& endpoint);
    awaitable<void> accept_loop();
    void shutdown();
    void wait_signal();
    awaitable<void> drain(Worker& worker);

    policy::Settings settings_;
    ProxyShared shared_;
    std::unique_ptr<Auditor> auditor_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unique_ptr<tcp::acceptor> acceptor_;  ///< on worker 0; sockets go to workers in turn
    tcp::endpoint endpoint_;
    asio::signal_set* signals_ = nullptr;  ///< lives in run()
    bool shutting_down_ = false;
    // --event-fd: a thread reads the jail's events until run() ends, then drains the rest.
    int event_fd_ = -1;
    std::unique_ptr<ClientMap> clients_;
    int event_stop_[2] = {-1, -1};
    std::thread event_reader_;
    std::mutex event_mutex_;
    std::string event_pending_;  ///< a partial line; under event_mutex_
    void read_events();
    bool drain_events();  ///< reads what the pipe holds now; false at EOF
};

}  // namespace lj::proxy
