// SPDX-License-Identifier: Apache-2.0
// A request head as the session handles it, as pure functions over Beast headers (no I/O):
// the checks that turn what the client sent into the policy's canonical request, and the
// head that is forwarded to the origin. The fuzz target tests/fuzz/fuzz_request_head.cpp
// drives the same functions.
#pragma once

#include <cstdint>
#include <string>

#include "policy/request.hpp"
#include "policy/result.hpp"
#include "proxy/net.hpp"
#include "proxy/session/http_fields.hpp"

namespace lj::proxy {

/// Where the requests inside a CONNECT tunnel must go.
struct TunnelOrigin {
    std::string scheme;  ///< "https" (intercepted) or "http" (plain HTTP in the tunnel)
    policy::Host host;
    std::uint16_t port = 0;
    bool misdirected = false;  ///< the TLS SNI named another host
};

/// The canonical request for a head received on the listener (`origin` null: absolute-form
/// targets) or inside a tunnel (origin-form targets for `origin`), with `upgrade` set for a
/// WebSocket upgrade. On error, `status` is the answer (400, or 421 for a request that
/// names another host than its tunnel) and the message says why.
Result<policy::Request> request_from_head(const http::request_header<>& req,
                                          const TunnelOrigin* origin, int& status);

/// The head as forwarded: origin-form target (the normalized path that was matched),
/// canonical Host, no hop-by-hop fields, the framing `framing` describes, keep-alive towards
/// the origin (Connection: Upgrade for a WebSocket).
void rewrite_for_origin(http::request_header<>& req, const policy::Request& preq,
                        const Framing& framing);

}  // namespace lj::proxy
