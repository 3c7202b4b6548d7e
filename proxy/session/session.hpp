// SPDX-License-Identifier: Apache-2.0
// One client connection of the proxy: HTTP/1.1 absolute-form requests and CONNECT tunnels
// (TLS intercepted with a minted leaf, plain HTTP handled the same way, passthrough hosts
// tunnelled untouched). Every request is decided by the policy and audited on its own;
// bodies stream both ways through one bounded buffer; WebSocket upgrades are relayed.
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <vector>

#include "policy/engine.hpp"
#include "policy/rule.hpp"
#include "proxy/audit/auditor.hpp"
#include "proxy/net.hpp"
#include "proxy/session/upstream.hpp"
#include "proxy/tls/tls_config.hpp"

namespace lj::proxy {

struct Timeouts {
    std::chrono::milliseconds header{30000};     ///< to receive a request's headers
    std::chrono::milliseconds idle{600000};      ///< no byte moved on a body or tunnel
    std::chrono::milliseconds upstream{300000};  ///< for the response headers after the request
};

/// Immutable configuration shared by every worker thread.
struct ProxyShared {
    std::shared_ptr<const policy::Engine> engine;
    std::vector<policy::HostPattern> passthrough;  ///< tls.passthrough: tunnelled untouched
    Timeouts timeouts;
    Auditor* auditor = nullptr;    ///< may be null (audit disabled)
    ClientMap* clients = nullptr;  ///< who is behind a client (under landjail), may be null
};

class Session;

/// Per-thread state: one io_context, its TLS context and upstream pool, and its sessions.
struct Worker {
    asio::io_context io{1};
    const ProxyShared* shared = nullptr;
    std::unique_ptr<TlsContext> tls;
    std::unique_ptr<Upstream> upstream;
    std::list<Session*> sessions;  ///< live sessions, for draining on shutdown
    bool draining = false;
    /// Keeps run() going while the worker waits for connections from the acceptor.
    asio::executor_work_guard<asio::io_context::executor_type> busy{io.get_executor()};

    /// Stops keep-alive everywhere and closes the sessions that wait for a request.
    void drain();
    /// Closes every session's connections (end of the shutdown grace period).
    void abort_all();
};

/// Serves one accepted client connection until it closes.
awaitable<void> serve_client(tcp::socket socket, Worker& worker);

}  // namespace lj::proxy
