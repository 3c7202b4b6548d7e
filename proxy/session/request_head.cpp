// SPDX-License-Identifier: Apache-2.0
#include "proxy/session/request_head.hpp"

#include <string>

#include "policy/request.hpp"
#include "policy/text.hpp"

namespace lj::proxy {

Result<policy::Request> request_from_head(const http::request_header<>& req,
                                          const TunnelOrigin* origin, int& status) {
    const std::string method(req.method_string());
    const std::string target(req.target());
    status = 400;
    Result<policy::Request> r = make_error("");
    if (!target.empty() && target.front() == '/') {
        if (!origin) {
            return make_error(
                "landjail-proxy is a forward proxy: send the absolute URL "
                "(http://host/path) or use CONNECT");
        }
        r = policy::parse_origin_request(method, origin->scheme, origin->host, origin->port,
                                         target);
    } else {
        r = policy::parse_request(method, target);
    }
    if (!r) {
        return r;
    }
    const std::uint16_t dport = policy::default_port(r->scheme);
    if (origin && (r->host != origin->host || r->port != origin->port)) {
        status = 421;
        return make_error("the request names " + r->host.authority() + " inside a tunnel to " +
                          origin->host.authority());
    }
    auto host_field = req.find(http::field::host);
    if (host_field == req.end()) {
        if (origin) {
            return make_error("missing Host header");
        }
        return r;
    }
    auto hp = policy::parse_host_port(policy::trim(host_field->value()), dport);
    if (!hp || hp->host != r->host || hp->port != r->port) {
        status = origin ? 421 : 400;
        return make_error("Host header '" + policy::printable(host_field->value()) +
                          "' does not match " + r->host.authority());
    }
    if (origin && origin->misdirected) {
        status = 421;
        return make_error("the TLS server name (SNI) does not match the CONNECT host " +
                          origin->host.authority());
    }
    if (is_websocket_upgrade(req)) {
        r->upgrade = "websocket";  // the only upgrade the proxy relays; others are dropped
    }
    return r;
}

/// The request as forwarded: origin-form target (the normalized path that was matched),
/// canonical Host, no hop-by-hop fields, framed by the proxy itself, keep-alive towards the
/// origin.
void rewrite_for_origin(http::request_header<>& req, const policy::Request& preq,
                        const Framing& framing) {
    const bool websocket = !preq.upgrade.empty();
    req.target(preq.path + (preq.has_query ? "?" + preq.query : std::string()));
    strip_hop_by_hop(req, websocket);
    frame(req, framing);
    req.set(http::field::host, preq.port == policy::default_port(preq.scheme)
                                   ? preq.host.authority()
                                   : preq.host.authority() + ":" + std::to_string(preq.port));
    if (websocket) {
        req.set(http::field::connection, "Upgrade");
    } else {
        // Keep-alive towards the origin (Connection was removed with the hop-by-hop fields).
        if (req.version() < 11) {
            req.set(http::field::connection, "keep-alive");
        }
    }
}

}  // namespace lj::proxy
