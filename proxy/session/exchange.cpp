// SPDX-License-Identifier: Apache-2.0
// An exchange's pure decisions; its I/O is templates in exchange.hpp.
#include "proxy/session/exchange.hpp"

#include <utility>

namespace lj::proxy {

bool is_parse_error(const error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
           ec != http::error::partial_message && ec != http::error::end_of_stream;
}

std::string_view outcome_of(const RelayEnd& r, bool client_read, bool timed_out) {
    if (timed_out) {
        return "idle_timeout";
    }
    const bool client_side = r.read_side == client_read;
    if (client_side) {
        return r.read_side && is_parse_error(r.ec) ? "bad_chunk" : "client_aborted";
    }
    return r.read_side && is_parse_error(r.ec) ? "upstream_bad_response" : "upstream_failed";
}

namespace {

/// The 400 or 421 of a head that makes no canonical request.
Refusal refused_head(const http::request_header<>& head, int status, const std::string& why,
                     bool keep_alive, bool head_request) {
    const bool misdirected = status == 421;
    const auto st = misdirected ? http::status::misdirected_request : http::status::bad_request;
    return {decision_event(std::string(head.method_string()), std::string(head.target()), "", {},
                           misdirected ? "misdirected" : "bad_request", status),
            reply(st, refused_head_body(why), keep_alive, head_request)};
}

/// The refusal of a canonical request under decision `d`, if any.
std::optional<Refusal> refusal_of(const policy::Request& r, const policy::Decision& d,
                                  bool keep_alive, bool head_request, bool audit_refused) {
    if (d.reason == policy::Reason::AmbiguousPath) {
        return Refusal{
            decision_event(r.method, r.url(), r.host.text, d, {}, 400),
            reply(http::status::bad_request, ambiguous_path_body(r), false, head_request)};
    }
    if (!d.allowed) {
        return Refusal{decision_event(r.method, r.url(), r.host.text, d, {}, 403),
                       deny_reply(r, d, keep_alive, head_request)};
    }
    if (audit_refused) {
        return Refusal{decision_event(r.method, r.url(), r.host.text, d, "audit_unavailable", 503),
                       reply(http::status::service_unavailable, audit_unavailable_body(), false,
                             head_request)};
    }
    return std::nullopt;
}

}  // namespace

RequestVerdict judge_request(const http::request_header<>& head, const TunnelOrigin* origin,
                             const policy::Engine& engine, bool keep_alive, bool head_request,
                             bool audit_refused) {
    RequestVerdict v;
    int status = 400;
    auto preq = request_from_head(head, origin, status);
    if (!preq) {
        v.refusal = refused_head(head, status, preq.error().message, keep_alive, head_request);
        return v;
    }
    v.request = std::move(*preq);
    v.decision = engine.evaluate(v.request);
    v.refusal = refusal_of(v.request, v.decision, keep_alive, head_request, audit_refused);
    return v;
}

}  // namespace lj::proxy
