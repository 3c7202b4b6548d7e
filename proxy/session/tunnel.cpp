// SPDX-License-Identifier: Apache-2.0
// The CONNECT decision and the TLS start of an intercepted tunnel; the tunnel's I/O is a
// template in tunnel.hpp.
#include "proxy/session/tunnel.hpp"

#include <utility>

#include <spdlog/spdlog.h>

#include "proxy/session/trail.hpp"

namespace lj::proxy {

TunnelPlan plan_tunnel(std::string_view target, const policy::Engine& engine,
                       const std::vector<policy::HostPattern>& passthrough) {
    TunnelPlan plan;
    auto hp = policy::parse_host_port(target, 0);
    if (!hp) {
        plan.refusal =
            Refusal{decision_event("CONNECT", std::string(target), "", {}, "bad_request", 400),
                    reply(http::status::bad_request, bad_connect_target_body(hp.error().message),
                          false, false)};
        return plan;
    }
    plan.host = hp->host;
    plan.port = hp->port;
    const policy::Decision d = engine.decide_connect(plan.host.text, plan.host.kind, plan.port);
    if (!d.allowed) {
        const std::string text = plan.host.authority() + ":" + std::to_string(plan.port);
        plan.refusal = Refusal{decision_event("CONNECT", text, plan.host.text, d, {}, 403),
                               connect_deny_reply(text, plan.host, d)};
        plan.denied = true;
        return plan;
    }
    for (const policy::HostPattern& p : passthrough) {
        if (p.matches(plan.host.text, plan.host.kind)) {
            plan.passthrough = true;
            break;
        }
    }
    return plan;
}

AuditEvent unused_denied_tunnel(AuditEvent connect_refusal) {
    connect_refusal.status.reset();
    connect_refusal.outcome = "no_request";
    return connect_refusal;
}

AuditEvent passthrough_event(const policy::Host& host, std::uint16_t port, bool allowed,
                             std::string reason, int status) {
    policy::Decision d;
    d.allowed = allowed;
    d.reason = policy::Reason::AllowRule;
    return decision_event("CONNECT", host.authority() + ":" + std::to_string(port), host.text, d,
                          std::move(reason), status);
}

Refusal passthrough_unavailable(const policy::Host& host, std::uint16_t port) {
    return {passthrough_event(host, port, true, "audit_unavailable", 503),
            reply(http::status::service_unavailable, audit_unavailable_body(), false, false)};
}

Refusal passthrough_unreachable(const policy::Host& host, std::uint16_t port,
                                const UpstreamFailure& f) {
    const std::string target = host.authority() + ":" + std::to_string(port);
    return {passthrough_event(host, port, false, "passthrough", 502),
            reply(http::status::bad_gateway, upstream_failure_body(target, f), false, false)};
}

awaitable<bool> accept_tls(Stream& client, beast::flat_buffer& client_buf, TlsContext& tls,
                           TunnelOrigin& origin) {
    std::string sni;
    auto conf = tls.server_for(origin.host, &sni);
    if (!conf) {
        spdlog::warn("TLS for {}: {}", origin.host.text, conf.error().message);
        co_return false;
    }
    const auto prefix = client_buf.data();
    std::string bytes(static_cast<const char*>(prefix.data()), prefix.size());
    client_buf.consume(client_buf.size());
    const error_code ec = co_await client.handshake_server(std::move(*conf), bytes);
    if (ec) {
        spdlog::debug("TLS handshake with the client for {} failed: {}", origin.host.text,
                      ec.message());
        co_return false;
    }
    if (!sni.empty()) {
        auto named = policy::canonical_host(sni);
        origin.misdirected = !named || *named != origin.host;
    }
    co_return true;
}

}  // namespace lj::proxy
