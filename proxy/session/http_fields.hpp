// SPDX-License-Identifier: Apache-2.0
// Header rules the proxy applies to every message, as pure functions over Beast fields:
// hop-by-hop removal (RFC 9110 §7.6.1), WebSocket upgrade detection (RFC 6455 §4.1) and the
// request framings refused as request smuggling shapes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/net.hpp"

namespace lj::proxy {

/// ASCII case-insensitive comparison (header names and tokens).
bool iequals(std::string_view a, std::string_view b);

/// Fields that say how long a message is and where it goes (Content-Length,
/// Transfer-Encoding, Host). A Connection header can never nominate them for removal: the
/// proxy frames and routes every message it forwards itself.
bool is_framing_field(std::string_view name);

/// Removes the hop-by-hop fields, and the fields the Connection header names except the
/// framing fields. With `keep_upgrade`, Upgrade and a Connection token "upgrade" survive
/// (WebSocket).
void strip_hop_by_hop(http::fields& fields, bool keep_upgrade);

/// How a forwarded message's body is delimited, as its parser read it.
struct Framing {
    bool body = false;     ///< a body follows the head
    bool chunked = false;  ///< it arrived chunked (else: content_length, or until close)
    std::optional<std::uint64_t> content_length;
};

/// The framing the parser read from the head it has parsed.
template <bool isRequest>
Framing framing_of(const http::parser<isRequest, http::buffer_body>& parser) {
    Framing f{!parser.is_done(), parser.chunked(), std::nullopt};
    if (const auto length = parser.content_length()) {
        f.content_length = *length;
    }
    return f;
}

/// Sets the message's framing fields from `f`, whatever the fields said before: a chunked
/// body goes on chunked, a sized one with its Content-Length, a body of unknown length (a
/// response that ends when the origin closes) chunked; without a body there is no
/// Transfer-Encoding and only the Content-Length the parser read (0 on a request, or what
/// a HEAD or 304 response declares).
template <bool isRequest, class Fields>
void frame(http::header<isRequest, Fields>& h, const Framing& f);

/// Upgrade: websocket together with a Connection: upgrade token.
bool is_websocket_upgrade(const http::fields& fields);

/// Why the request's framing is refused (several Content-Length, Transfer-Encoding or Host
/// fields, both Content-Length and Transfer-Encoding, Transfer-Encoding other than chunked or
/// in HTTP/1.0, a Connection header naming a framing field, a CONNECT with a body); "" when
/// it is acceptable.
std::string framing_problem(const http::request_header<>& req);

}  // namespace lj::proxy
