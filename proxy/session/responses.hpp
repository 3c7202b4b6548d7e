// SPDX-License-Identifier: Apache-2.0
// The proxy's own answers, as pure builders (no I/O): the 403 of a denial with its
// explanation, the 400/421/431/502/503/504 bodies that say what went wrong, 100 Continue and
// the 200 that opens a CONNECT tunnel. The session writes what these return; the unit tests
// read them without a stream (tests/unit/test_session_responses.cpp).
#pragma once

#include <string>
#include <string_view>

#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "proxy/audit/auditor.hpp"
#include "proxy/net.hpp"
#include "proxy/session/upstream.hpp"

namespace lj::proxy {

/// One of the proxy's own responses, written whole.
using Reply = http::response<http::string_body>;

/// A request the proxy answers itself: the event of its decision (recorded first), and the
/// answer.
struct Refusal {
    AuditEvent event;
    Reply reply;
};

/// A text/plain answer: Server: landjail-proxy, Connection per `keep_alive`, Content-Length of
/// `body`. For a HEAD request (`head_request`) the body is left out and the length stays.
Reply reply(http::status status, std::string body, bool keep_alive, bool head_request);

/// The 403 of a request the policy denies: X-Landjail-Decision: deny and deny_body().
Reply deny_reply(const policy::Request& r, const policy::Decision& d, bool keep_alive,
                 bool head_request);

/// The 403 of a CONNECT to host:port that no rule can allow (`target`: "host:port").
Reply connect_deny_reply(const std::string& target, const policy::Host& host,
                         const policy::Decision& d);

/// 100 Continue: a bare status line, no fields.
Reply continue_reply();

/// The head that opens a tunnel, with no length (the bytes that follow are the tunnel's):
/// "200 Connection established" for an intercepted tunnel, "200 OK" for a passthrough one.
http::response<http::empty_body> tunnel_open(bool intercepted);

// ---- bodies: each one line or paragraph, ending in a newline ----

/// The denied request (method and URL), the deny rule that refused it, or the --allow rule
/// that would allow it.
std::string deny_body(const policy::Request& r, const policy::Decision& d);
/// The CONNECT target refused, the deny rule, or a domain= rule that would allow it.
std::string connect_deny_body(const std::string& target, const policy::Host& host,
                              const policy::Decision& d);
/// 502/504: the target that could not be reached, the step that failed and the error.
std::string upstream_failure_body(const std::string& target, const UpstreamFailure& f);
/// 431: request headers over the 64 KiB limit.
std::string header_too_large_body();
/// 400: the request head could not be parsed (`why`: the parser's message).
std::string malformed_request_body(std::string_view why);
/// 400: the request's framing is ambiguous (`why`: framing_problem()).
std::string bad_framing_body(std::string_view why);
/// 400/421: the request head is refused (`why`: request_from_head()'s message).
std::string refused_head_body(std::string_view why);
/// 400: rules constrain paths and the request's path reads differently to some origins.
std::string ambiguous_path_body(const policy::Request& r);
/// 400: the request body could not be parsed (`why`: the parser's message).
std::string malformed_body_body(std::string_view why);
/// 400: the CONNECT target is not host:port (`why`: parse_host_port()'s message).
std::string bad_connect_target_body(std::string_view why);
/// 503: audit.required and the trail cannot be written now.
std::string audit_unavailable_body();

}  // namespace lj::proxy
