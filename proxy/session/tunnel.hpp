// SPDX-License-Identifier: Apache-2.0
// A CONNECT request on the listener: the decision for host:port (plan_tunnel, pure), then a
// refusal (403 when no rule can allow the host, 400 for a bad target), a passthrough tunnel
// (tls.passthrough hosts: one audit event, bytes relayed untouched) or an intercepted one:
// 200, then TLS with a minted leaf when the client starts a handshake, plain HTTP otherwise.
// The requests inside an intercepted tunnel are served by the request loop (loop.hpp), each
// decided and audited on its own.
//
// Thread-safety: as Connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "policy/rule.hpp"
#include "proxy/net.hpp"
#include "proxy/session/connection.hpp"
#include "proxy/session/http_fields.hpp"
#include "proxy/session/relay.hpp"
#include "proxy/session/request_head.hpp"
#include "proxy/session/responses.hpp"
#include "proxy/tls/stream.hpp"
#include "proxy/tls/tls_config.hpp"

namespace lj::proxy {

/// What a CONNECT gets, decided before any byte moves.
struct TunnelPlan {
    std::optional<Refusal> refusal;  ///< answered at once: 400 (bad target) or 403
    policy::Host host;
    std::uint16_t port = 0;
    bool passthrough = false;  ///< a tls.passthrough host: relayed untouched
    bool denied = false;       ///< refused by the policy (a 403), not for a bad target
};

/// Whether a refused plan is intercepted instead (ProxyShared::intercept_denied): a policy
/// refusal of port 443, where clients speak TLS; other ports are refused at CONNECT, as are
/// clients that would not speak TLS. Pure.
inline bool intercepts_denial(const TunnelPlan& plan, bool intercept_denied) {
    return plan.refusal && plan.denied && intercept_denied && plan.port == 443;
}

/// The event of an intercepted denied tunnel in which no request was decided (the client
/// gave up at TLS, or sent nothing): the CONNECT's refusal, nothing reached the client but
/// the 200, outcome `no_request`. Pure.
AuditEvent unused_denied_tunnel(AuditEvent connect_refusal);

/// The plan for CONNECT `target` (host:port) under `engine`: refused when the target does not
/// parse or no rule can allow any request to host:port, passed through for the `passthrough`
/// hosts, intercepted otherwise. Pure.
TunnelPlan plan_tunnel(std::string_view target, const policy::Engine& engine,
                       const std::vector<policy::HostPattern>& passthrough);

/// The passthrough tunnel's one event ("CONNECT host:port", reason `reason`). Pure.
AuditEvent passthrough_event(const policy::Host& host, std::uint16_t port, bool allowed,
                             std::string reason, int status);
/// The 503 of a passthrough tunnel while audit.required cannot be written. Pure.
Refusal passthrough_unavailable(const policy::Host& host, std::uint16_t port);
/// The 502 of a passthrough tunnel whose origin cannot be reached (`f`: the step). Pure.
Refusal passthrough_unreachable(const policy::Host& host, std::uint16_t port,
                                const UpstreamFailure& f);

/// Server-side TLS on the client stream with a leaf for `origin.host` (the bytes already
/// read, `client_buf`, are the start of the ClientHello); sets `origin.misdirected` when the
/// SNI names another host. False when the handshake failed (logged) and the connection ends.
awaitable<bool> accept_tls(Stream& client, beast::flat_buffer& client_buf, TlsContext& tls,
                           TunnelOrigin& origin);

/// After the 200: waits for the client's first bytes and tells TLS (a handshake record) from
/// plain HTTP. The origin whose requests the loop then serves, or nullopt when the connection
/// ends (the client went away, or TLS failed; a test stream carries no TLS).
template <class W>
awaitable<std::optional<TunnelOrigin>> intercept(Connection<W>& c, const policy::Host& host,
                                                 std::uint16_t port) {
    c.arm(Phase::Request, c.shared.timeouts.header);
    if (c.client_buf.size() == 0) {
        error_code ec;
        const std::size_t n = co_await c.client.async_read_some(
            c.client_buf.prepare(kTunnelChunk), asio::redirect_error(use_awaitable, ec));
        if (ec) {
            co_return std::nullopt;
        }
        c.client_buf.commit(n);
    }
    const auto first =
        static_cast<unsigned char>(*static_cast<const char*>(c.client_buf.data().data()));
    TunnelOrigin origin{"https", host, port, false};
    if (first != 0x16) {  // not a TLS handshake record: plain HTTP inside the tunnel
        origin.scheme = "http";
        co_return origin;
    }
    if constexpr (std::is_same_v<typename W::Stream, Stream>) {
        if (co_await accept_tls(c.client, c.client_buf, *c.worker.tls, origin)) {
            co_return origin;
        }
    }
    co_return std::nullopt;
}

/// A tls.passthrough tunnel: its one event is written before the 200 (a 503 instead while
/// audit.required cannot be written, a 502 naming the step when the origin cannot be
/// reached), then bytes move both ways untouched until either side closes.
template <class W>
awaitable<void> passthrough(Connection<W>& c, const policy::Host& host, std::uint16_t port) {
    if (c.trail.must_refuse()) {  // an opaque tunnel: its one event must be written first
        Refusal refusal = passthrough_unavailable(host, port);
        co_await c.refuse(std::move(refusal));
        co_return;
    }
    UpstreamFailure failure;
    auto up = co_await c.worker.upstream->connect_tcp(host, port, failure);
    if (!up) {
        Refusal refusal = passthrough_unreachable(host, port, failure);
        co_await c.refuse(std::move(refusal));
        co_return;
    }
    c.trail.record(passthrough_event(host, port, true, "passthrough", 200));
    auto ok = tunnel_open(false);
    if (co_await write_head(c.client, ok)) {
        co_return;
    }
    c.upstream = up.get();
    beast::flat_buffer none;
    co_await c.relay_raw(*up, none);
    c.upstream = nullptr;
}

/// A CONNECT request: refused, passed through, or opened for interception. Returns the origin
/// whose requests the loop serves next inside the tunnel, or nullopt when the connection ends.
/// A tunnel no rule can allow may be intercepted (intercepts_denial; never the shim's, marked
/// `X-Landjail-Tunnel: raw`, see shim/core.h): its requests are then
/// denied one by one, with their full URLs, and `pending` holds the CONNECT's refusal for a
/// tunnel that ends without one.
template <class W>
awaitable<std::optional<TunnelOrigin>> open_tunnel(Connection<W>& c,
                                                   const http::request_header<>& req,
                                                   PendingRefusal& pending) {
    TunnelPlan plan = plan_tunnel(req.target(), *c.shared.engine, c.shared.passthrough);
    // The shim's tunnels carry a program's own TCP, which may not be TLS: refused at CONNECT.
    const bool raw = iequals(req["X-Landjail-Tunnel"], "raw");
    if (plan.refusal && (raw || !intercepts_denial(plan, c.shared.intercept_denied))) {
        co_await c.refuse(std::move(*plan.refusal));
        co_return std::nullopt;
    }
    if (plan.refusal) {
        pending.arm(unused_denied_tunnel(std::move(plan.refusal->event)));
    }
    if (plan.passthrough) {
        co_await passthrough(c, plan.host, plan.port);
        co_return std::nullopt;
    }
    auto ok = tunnel_open(true);
    if (co_await write_head(c.client, ok)) {
        co_return std::nullopt;
    }
    co_return co_await intercept(c, plan.host, plan.port);
}

}  // namespace lj::proxy
