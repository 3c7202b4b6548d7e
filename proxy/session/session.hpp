// SPDX-License-Identifier: Apache-2.0
// One client connection of the proxy: HTTP/1.1 absolute-form requests and CONNECT tunnels
// (TLS intercepted with a minted leaf, plain HTTP handled the same way, passthrough hosts
// tunnelled untouched). Every request is decided by the policy and audited on its own;
// bodies stream both ways through one bounded buffer; WebSocket upgrades are relayed.
//
// The rooms of proxy/session/, in the order a request walks through them:
//   loop.hpp       the request loop of a connection (read a head, refuse the unreadable)
//   tunnel.hpp     a CONNECT: decision, passthrough, or interception (TLS or plain)
//   exchange.hpp   one forwarded request: decision, upstream, response, its audit event
//   relay.hpp      moving a message or raw bytes between two streams (splice(2) in relay.cpp)
// and what they share: connection.hpp (the connection's state and watchdog), responses.hpp
// (the proxy's own answers, pure), trail.hpp (the one way to the audit trail),
// request_head.hpp and http_fields.hpp (pure header rules), upstream.hpp (origin pool).
// The roles are templates over the worker (and so the stream type): the product
// instantiates them once, for Worker and Stream, in session.cpp; the unit tests on
// beast::test::stream (tests/unit/test_session_*.cpp).
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
    /// tls.intercept_denied: a CONNECT to port 443 no rule can allow is intercepted, and each
    /// request inside denied with its full URL, instead of a 403 to the CONNECT.
    bool intercept_denied = true;
    /// Session correlation (Coder's AI Gateway): allowed requests these rules match (null:
    /// off) get the session id and their event's sequence number in two headers.
    std::shared_ptr<const policy::Engine> correlation;
    std::string session_header = "X-Coder-Agent-Firewall-Session-Id";
    std::string sequence_header = "X-Coder-Agent-Firewall-Sequence-Number";
};

template <class W>
class Connection;

/// Per-thread state: one io_context, its TLS context and upstream pool, and its sessions.
struct Worker {
    using Stream = lj::proxy::Stream;  ///< what its connections read and write

    asio::io_context io{1};
    const ProxyShared* shared = nullptr;
    std::unique_ptr<TlsContext> tls;
    std::unique_ptr<Upstream> upstream;
    std::list<Connection<Worker>*> sessions;  ///< live sessions, for draining on shutdown
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
