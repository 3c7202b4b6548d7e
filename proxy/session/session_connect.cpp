// SPDX-License-Identifier: Apache-2.0
// CONNECT tunnels: the policy decision for host:port, then either a passthrough tunnel
// (tls.passthrough hosts, bytes relayed untouched) or interception: TLS with a minted leaf
// when the client starts a handshake, plain HTTP otherwise, served by the request loop.
#include <string>

#include <spdlog/spdlog.h>

#include "policy/request.hpp"
#include "policy/rule.hpp"
#include "proxy/session/session_impl.hpp"

namespace lj::proxy {

awaitable<void> Session::handle_connect(const Request& req) {
    const std::string target(req.target());
    auto hp = policy::parse_host_port(target, 0);
    if (!hp) {
        audit("CONNECT", target, "", {}, "bad_request", 400);
        const std::string body = "landjail: bad CONNECT target: " + hp.error().message + "\n";
        co_await respond(http::status::bad_request, body, false);
        co_return;
    }
    const policy::Host host = hp->host;
    const std::uint16_t port = hp->port;
    const policy::Decision d = shared_.engine->decide_connect(host.text, host.kind, port);
    if (!d.allowed) {
        const std::string target_text = host.authority() + ":" + std::to_string(port);
        audit("CONNECT", target_text, host.text, d, {}, 403);
        const std::string body = connect_deny_body(target_text, host, d);
        co_await respond(http::status::forbidden, body, false, true);
        co_return;
    }
    for (const policy::HostPattern& p : shared_.passthrough) {
        if (p.matches(host.text, host.kind)) {
            co_await passthrough(host, port);
            co_return;
        }
    }
    http::response<http::empty_body> ok{http::status::ok, 11};
    ok.reason("Connection established");
    error_code ec;
    http::response_serializer<http::empty_body> sr{ok};
    sr.split(true);
    co_await http::async_write_header(client_, sr, asio::redirect_error(use_awaitable, ec));
    if (ec) {
        co_return;
    }
    co_await intercept(host, port);
}

awaitable<void> Session::intercept(const policy::Host& host, std::uint16_t port) {
    error_code ec;
    arm(Phase::Request, shared_.timeouts.header);
    if (client_buf_.size() == 0) {
        const std::size_t n = co_await client_.async_read_some(
            client_buf_.prepare(kChunk), asio::redirect_error(use_awaitable, ec));
        if (ec) {
            co_return;
        }
        client_buf_.commit(n);
    }
    const auto first =
        static_cast<unsigned char>(*static_cast<const char*>(client_buf_.data().data()));
    Origin origin{"https", host, port, false};
    if (first != 0x16) {  // not a TLS handshake record: plain HTTP inside the tunnel
        origin.scheme = "http";
        co_await serve(&origin);
        co_return;
    }
    std::string sni;
    auto conf = worker_.tls->server_for(host, &sni);
    if (!conf) {
        spdlog::warn("TLS for {}: {}", host.text, conf.error().message);
        co_return;
    }
    const auto prefix = client_buf_.data();
    std::string bytes(static_cast<const char*>(prefix.data()), prefix.size());
    client_buf_.consume(client_buf_.size());
    ec = co_await client_.handshake_server(std::move(*conf), bytes);
    if (ec) {
        spdlog::debug("TLS handshake with the client for {} failed: {}", host.text, ec.message());
        co_return;
    }
    if (!sni.empty()) {
        auto named = policy::canonical_host(sni);
        origin.misdirected = !named || *named != host;
    }
    co_await serve(&origin);
}

awaitable<void> Session::passthrough(const policy::Host& host, std::uint16_t port) {
    if (audit_unavailable()) {  // an opaque tunnel: its one event must be written first
        policy::Decision d;
        d.allowed = true;
        d.reason = policy::Reason::AllowRule;
        audit("CONNECT", host.authority() + ":" + std::to_string(port), host.text, d,
              "audit_unavailable", 503);
        co_await respond(http::status::service_unavailable, kAuditUnavailableBody, false);
        co_return;
    }
    UpstreamFailure failure;
    auto up = co_await worker_.upstream->connect_tcp(host, port, failure);
    policy::Decision d;
    d.allowed = up != nullptr;
    d.reason = policy::Reason::AllowRule;
    const std::string url = host.authority() + ":" + std::to_string(port);
    if (!up) {
        audit("CONNECT", url, host.text, d, "passthrough", 502);
        const std::string body = status_step_body(url, failure);
        co_await respond(http::status::bad_gateway, body, false);
        co_return;
    }
    audit("CONNECT", url, host.text, d, "passthrough", 200);
    http::response<http::empty_body> ok{http::status::ok, 11};
    http::response_serializer<http::empty_body> sr{ok};
    sr.split(true);
    error_code ec;
    co_await http::async_write_header(client_, sr, asio::redirect_error(use_awaitable, ec));
    if (ec) {
        co_return;
    }
    upstream_ = up.get();
    beast::flat_buffer none;
    co_await splice(client_, client_buf_, *up, none);
    upstream_ = nullptr;
}

}  // namespace lj::proxy
