// SPDX-License-Identifier: Apache-2.0
// Header rules the proxy applies to every message, as pure functions over Beast fields:
// hop-by-hop removal (RFC 9110 §7.6.1), WebSocket upgrade detection (RFC 6455 §4.1) and the
// request framings refused as request smuggling shapes.
#pragma once

#include <string>
#include <string_view>

#include "proxy/net.hpp"

namespace lj::proxy {

/// ASCII case-insensitive comparison (header names and tokens).
bool iequals(std::string_view a, std::string_view b);

/// Removes the hop-by-hop fields, and the fields the Connection header names. With
/// `keep_upgrade`, Upgrade and a Connection token "upgrade" survive (WebSocket).
void strip_hop_by_hop(http::fields& fields, bool keep_upgrade);

/// Upgrade: websocket together with a Connection: upgrade token.
bool is_websocket_upgrade(const http::fields& fields);

/// Why the request's framing is refused (several Content-Length, Transfer-Encoding or Host
/// fields, both Content-Length and Transfer-Encoding, Transfer-Encoding other than chunked);
/// "" when it is acceptable.
std::string framing_problem(const http::fields& fields);

}  // namespace lj::proxy
