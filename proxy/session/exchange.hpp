// SPDX-License-Identifier: Apache-2.0
// One exchange: a plain request (absolute-form on the listener, origin-form inside a tunnel)
// from its decision to the end of its response. judge_request() (pure) turns the head into
// the policy's request and decides it; a refused request is answered here (400/421/403/503);
// an allowed one is forwarded: an upstream connection (pooled, or a new one: 502/504 naming
// the step that failed), the request relayed with its framing and Host rewritten, the
// response head read (1xx passed on, a 101 turns into a raw relay), the response relayed.
// Its one audit event (Exchange, trail.hpp) is written on whatever path the exchange ends.
//
// Thread-safety: as Connection.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "proxy/net.hpp"
#include "proxy/session/connection.hpp"
#include "proxy/session/http_fields.hpp"
#include "proxy/session/relay.hpp"
#include "proxy/session/request_head.hpp"
#include "proxy/session/responses.hpp"
#include "proxy/session/trail.hpp"
#include "proxy/session/upstream.hpp"

namespace lj::proxy {

using RequestParser = http::request_parser<http::buffer_body>;
using ResponseParser = http::response_parser<http::buffer_body>;

/// What the proxy does with a request head: answer it itself (`refusal`), or forward
/// `request` under `decision`.
struct RequestVerdict {
    std::optional<Refusal> refusal;
    policy::Request request;
    policy::Decision decision;
};

/// The verdict on a request head read on the listener (`origin` null) or inside a tunnel:
/// 400/421 when it does not make a canonical request, 400 for an ambiguous path the rules
/// cannot judge, 403 when the policy denies it, 503 when it is allowed but the trail cannot
/// be written (`audit_refused`), else forward. `keep_alive`: whether a refusal that allows it
/// (400/421 of the head, 403) keeps the connection. Pure.
RequestVerdict judge_request(const http::request_header<>& head, const TunnelOrigin* origin,
                             const policy::Engine& engine, bool keep_alive, bool head_request,
                             bool audit_refused);

/// A Beast parse error (as opposed to a closed, reset or timed-out stream).
bool is_parse_error(const error_code& ec);

/// The outcome name of a relay that did not complete (`client_read`: the client was the side
/// read; `timed_out`: the idle deadline passed).
std::string_view outcome_of(const RelayEnd& r, bool client_read, bool timed_out);

// ---- the steps of an exchange, in the order they run ----

/// Expect: 100-continue with a body to come: the proxy answers 100 itself (the origin never
/// sees Expect, so no one waits).
inline bool expects_continue(const RequestParser& parser) {
    return !parser.is_done() && iequals(parser.get()[http::field::expect], "100-continue");
}

/// Answers the 100 of an expects_continue() request. False when the client is gone.
template <class W>
awaitable<bool> answer_expect(Connection<W>& c, Exchange& x, RequestParser& parser) {
    auto& req = parser.get();
    req.erase(http::field::expect);
    if (!co_await c.send(continue_reply())) {
        x.end("client_aborted");
        co_return false;
    }
    co_return true;
}

/// The 504 (`f.timed_out`) or 502 for an origin that failed at `f.step`; status and outcome
/// are recorded before the answer (the client may send its next request at once).
template <class W>
awaitable<void> answer_upstream_failure(Connection<W>& c, Exchange& x, const std::string& target,
                                        const UpstreamFailure& f, bool keep_alive) {
    const auto st = f.timed_out ? http::status::gateway_timeout : http::status::bad_gateway;
    x.status(static_cast<int>(st));
    x.end(f.timed_out ? "upstream_timeout" : "upstream_failed");
    x.record();
    co_await c.send(reply(st, upstream_failure_body(target, f), keep_alive, c.head_request));
}

/// The request (`r`) did not reach the origin whole: the outcome, and a 400 (bad chunk) or
/// 502 (the origin went away) when the client can still read one.
template <class W>
awaitable<void> request_body_failed(Connection<W>& c, Exchange& x, const RelayEnd& r,
                                    const policy::Request& preq) {
    x.end(outcome_of(r, true, c.timed_out()));
    if (c.timed_out()) {
        co_return;  // both streams are closed
    }
    if (r.read_side && is_parse_error(r.ec)) {
        x.status(400);
        x.record();
        co_await c.send(reply(http::status::bad_request, malformed_body_body(r.ec.message()), false,
                              c.head_request));
    } else if (!r.read_side) {
        const UpstreamFailure f{"send", r.ec.message()};
        co_await answer_upstream_failure(c, x, preq.host.authority(), f, false);
    }
}

/// Reads the response head from the origin, passing 1xx interim responses (other than 101)
/// on to the client. Null with `ec` set on failure (asio::error::shut_down: the client is
/// gone).
template <class W>
awaitable<std::unique_ptr<ResponseParser>> read_response(Connection<W>& c, typename W::Stream& up,
                                                         beast::flat_buffer& up_buf, bool head,
                                                         error_code& ec) {
    for (;;) {
        auto rp = std::make_unique<ResponseParser>();
        rp->header_limit(kHeaderLimit);
        rp->body_limit(std::numeric_limits<std::uint64_t>::max());
        rp->skip(head);
        c.arm(Phase::Upstream, c.shared.timeouts.upstream);
        co_await http::async_read_header(up, up_buf, *rp, asio::redirect_error(use_awaitable, ec));
        if (ec) {
            co_return nullptr;
        }
        const unsigned code = rp->get().result_int();
        if (code < 100 || code >= 200 || code == 101) {
            co_return rp;
        }
        // result_int(): Beast's status enum has no name for 103 (and any other 1xx it does
        // not know), which would be written as "000".
        http::response<http::empty_body> interim;
        interim.version(11);
        interim.result(code);
        interim.reason(rp->get().reason());
        for (const auto& f : rp->get()) {
            interim.set(f.name_string(), f.value());
        }
        if (co_await write_message(c.client, interim)) {
            ec = asio::error::shut_down;
            co_return nullptr;
        }
    }
}

/// The response head did not arrive: 504 on timeout, else 502; the client gone while 1xx
/// responses were relayed (asio::error::shut_down) ends the exchange without one.
template <class W>
awaitable<void> response_failed(Connection<W>& c, Exchange& x, const error_code& ec,
                                const policy::Request& preq) {
    if (ec == asio::error::shut_down) {
        x.end("client_aborted");
        co_return;
    }
    if (is_parse_error(ec)) {
        x.status(502);
        x.end("upstream_bad_response");
        x.record();
        const UpstreamFailure f{"response", "invalid response from the origin: " + ec.message()};
        co_await c.send(reply(http::status::bad_gateway,
                              upstream_failure_body(preq.host.authority(), f), false,
                              c.head_request));
        co_return;
    }
    const bool timeout = c.timed_out();
    const UpstreamFailure f{
        "response", timeout ? "timed out waiting for the response headers" : ec.message(), timeout};
    co_await answer_upstream_failure(c, x, preq.host.authority(), f, false);
}

/// After a 101 to a WebSocket upgrade: the head to the client, then bytes both ways.
template <class W>
awaitable<void> relay_upgrade(Connection<W>& c, http::response<http::buffer_body>& res,
                              typename W::Stream& up, beast::flat_buffer& up_buf) {
    strip_hop_by_hop(res, true);
    res.set(http::field::connection, "Upgrade");
    http::response<http::empty_body> head{res.result(), 11};
    for (const auto& f : res) {
        head.set(f.name_string(), f.value());
    }
    if (!co_await write_message(c.client, head)) {
        co_await c.relay_raw(up, up_buf);
    }
    c.upstream = nullptr;
}

/// The response body to the client: splice(2) between plain sockets for a large body of
/// known length, else through the relay buffer. Not a coroutine (no frame of its own).
template <class W>
awaitable<RelayEnd> relay_response_body(Connection<W>& c, typename W::Stream& up,
                                        beast::flat_buffer& up_buf, ResponseParser& rp) {
    if constexpr (std::is_same_v<typename W::Stream, Stream>) {
        if (spliceable(up, c.client, rp)) {
            std::function<void()> idle = [&c] { c.extend_idle(); };
            return splice_body(up, up_buf, rp, c.client, std::move(idle));
        }
    }
    return relay_message(up, up_buf, rp, c.client, [&c] { c.extend_idle(); });
}

/// The response's head and body to the client; `up` goes back to the pool when reusable.
/// A response that fails before its head reached the client becomes a 502.
template <class W>
awaitable<Next> relay_response(Connection<W>& c, Exchange& x, const policy::Request& preq,
                               ResponseParser& rp, std::unique_ptr<typename W::Stream>& up,
                               beast::flat_buffer& up_buf, bool client_keep) {
    auto& res = rp.get();
    const bool upstream_keep = res.keep_alive();
    strip_hop_by_hop(res, false);
    frame(res, framing_of(rp));  // a body the origin ends by closing goes on chunked
    res.version(11);
    res.keep_alive(client_keep);
    c.arm(Phase::Relay, c.shared.timeouts.idle);
    const RelayEnd r = co_await relay_response_body(c, *up, up_buf, rp);
    c.upstream = nullptr;
    if (r.complete) {
        if (upstream_keep && up_buf.size() == 0) {
            c.worker.upstream->release(preq.scheme, preq.host, preq.port, std::move(up));
        }
        co_return client_keep ? Next::KeepAlive : Next::Close;
    }
    x.end(outcome_of(r, false, c.timed_out()));
    if (!r.header_sent && r.read_side && !c.timed_out()) {
        // Nothing reached the client yet: it gets a 502 instead of an empty reply.
        x.status(502);
        x.record();
        const UpstreamFailure f{"response",
                                "invalid response body from the origin: " +
                                    (r.ec ? r.ec.message() : std::string("incomplete"))};
        co_await c.send(reply(http::status::bad_gateway,
                              upstream_failure_body(preq.host.authority(), f), false,
                              c.head_request));
    } else if (!r.header_sent) {
        x.status(std::nullopt);
    }
    co_return Next::Close;
}

/// The origin's answer to a request sent whole: its head (a failure answered 502/504), an
/// upgrade relayed raw, or the response relayed.
template <class W>
awaitable<Next> answer_from_origin(Connection<W>& c, Exchange& x, const policy::Request& preq,
                                   std::unique_ptr<typename W::Stream>& up, bool head,
                                   bool client_keep) {
    beast::flat_buffer up_buf;
    error_code ec;
    auto rp = co_await read_response(c, *up, up_buf, head, ec);
    if (!rp) {
        c.upstream = nullptr;
        co_await response_failed(c, x, ec, preq);
        co_return Next::Close;
    }
    auto& res = rp->get();
    const int code = static_cast<int>(res.result_int());
    if (code == 101 && preq.upgrade.empty()) {
        // An upgrade nobody asked for: the connection now speaks something else.
        c.upstream = nullptr;
        co_await response_failed(c, x, http::error::bad_status, preq);
        co_return Next::Close;
    }
    x.status(code);
    if (code == 101) {
        x.record();  // the exchange ends here; the tunnel that follows is opaque
        co_await relay_upgrade(c, res, *up, up_buf);
        co_return Next::Close;
    }
    co_return co_await relay_response(c, x, preq, *rp, up, up_buf, client_keep);
}

/// Forwards an allowed request: upstream connection, the request relayed, the answer.
template <class W>
awaitable<Next> forward(Connection<W>& c, RequestParser& parser, const policy::Request& preq,
                        const policy::Decision& d) {
    auto& req = parser.get();
    Exchange x(c.trail, preq, d);
    const bool client_keep = req.keep_alive() && !c.worker.draining;
    if (expects_continue(parser) && !co_await answer_expect(c, x, parser)) {
        co_return Next::Close;
    }
    UpstreamFailure failure;
    bool reused = false;
    c.arm(Phase::Upstream, c.shared.timeouts.upstream);
    auto up =
        co_await c.worker.upstream->acquire(preq.scheme, preq.host, preq.port, failure, reused);
    if (!up) {
        const bool keep = client_keep && parser.is_done();
        const std::string target = preq.host.authority() + ":" + std::to_string(preq.port);
        co_await answer_upstream_failure(c, x, target, failure, keep);
        co_return keep ? Next::KeepAlive : Next::Close;
    }
    c.upstream = up.get();
    rewrite_for_origin(req, preq, framing_of(parser));
    if (auto corr = c.trail.correlate(preq)) {  // the client's values are replaced
        x.sequence(corr->second);
        req.set(c.shared.session_header, corr->first);
        req.set(c.shared.sequence_header, std::to_string(corr->second));
    }
    c.arm(Phase::Relay, c.shared.timeouts.idle);
    const auto idle = [&c] { c.extend_idle(); };
    if (const RelayEnd r = co_await relay_message(c.client, c.client_buf, parser, *up, idle);
        r.ec) {
        c.upstream = nullptr;
        co_await request_body_failed(c, x, r, preq);
        co_return Next::Close;
    }
    const bool head = req.method() == http::verb::head;
    co_return co_await answer_from_origin(c, x, preq, up, head, client_keep);
}

/// One request that is not a CONNECT on the listener: decided, then refused or forwarded.
/// Whether the connection carries another request after it.
template <class W>
awaitable<Next> run_exchange(Connection<W>& c, RequestParser& parser, const TunnelOrigin* origin) {
    const auto& req = parser.get();
    const bool keep = req.keep_alive() && parser.is_done() && !c.worker.draining;
    RequestVerdict v =
        judge_request(req, origin, *c.shared.engine, keep, c.head_request, c.trail.must_refuse());
    if (v.refusal) {
        const bool keep_alive = v.refusal->reply.keep_alive();
        co_await c.refuse(std::move(*v.refusal));
        co_return keep_alive ? Next::KeepAlive : Next::Close;
    }
    co_return co_await forward(c, parser, v.request, v.decision);
}

}  // namespace lj::proxy
