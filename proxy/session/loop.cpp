// SPDX-License-Identifier: Apache-2.0
// The request loop's pure decisions; the loop itself is a template in loop.hpp.
#include "proxy/session/loop.hpp"

#include <string>

#include "proxy/session/http_fields.hpp"
#include "proxy/session/trail.hpp"

namespace lj::proxy {
namespace {

/// The client went away (closed, reset, timed out): nothing to answer.
bool quiet_end(const error_code& ec, bool timed_out) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::operation_aborted || timed_out ||
           ec == asio::error::connection_reset || ec == asio::error::bad_descriptor;
}

}  // namespace

std::optional<Refusal> unreadable_head(const error_code& ec, bool timed_out, bool head_request) {
    if (ec == http::error::header_limit) {
        return Refusal{decision_event("", "", "", {}, "header_too_large", 431),
                       reply(http::status::request_header_fields_too_large, header_too_large_body(),
                             false, head_request)};
    }
    if (quiet_end(ec, timed_out)) {
        return std::nullopt;
    }
    return Refusal{decision_event("", "", "", {}, "bad_request", 400),
                   reply(http::status::bad_request, malformed_request_body(ec.message()), false,
                         head_request)};
}

Refusal framing_refusal(const http::request_header<>& req, std::string_view why,
                        bool head_request) {
    return {decision_event(std::string(req.method_string()), std::string(req.target()), "", {},
                           "bad_request", 400, "ambiguous_framing"),
            reply(http::status::bad_request, bad_framing_body(why), false, head_request)};
}

}  // namespace lj::proxy
