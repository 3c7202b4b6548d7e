// SPDX-License-Identifier: Apache-2.0
// Plain HTTP requests (absolute-form on the listener, origin-form inside a tunnel): the
// checks that turn them into a policy::Request, the decision, and forwarding to the origin
// with the response (1xx, 101 upgrades, bodies) relayed back.
#include <limits>
#include <memory>
#include <string>

#include "policy/request.hpp"
#include "policy/text.hpp"
#include "proxy/session/http_fields.hpp"
#include "proxy/session/request_head.hpp"
#include "proxy/session/session_impl.hpp"

namespace lj::proxy {
namespace {

/// A Beast parse error (as opposed to a closed, reset or timed-out stream).
bool is_parse_error(const error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
           ec != http::error::partial_message && ec != http::error::end_of_stream;
}

}  // namespace

awaitable<Session::Next> Session::handle(http::request_parser<http::buffer_body>& parser,
                                         const Origin* origin) {
    const Request& req = parser.get();
    const bool has_body = !parser.is_done();
    const bool keep = req.keep_alive() && !has_body && !worker_.draining;
    int status = 400;
    auto preq = request_from_head(req, origin, status);
    if (!preq) {
        const bool misdirected = status == 421;
        audit(std::string(req.method_string()), std::string(req.target()), "", {},
              misdirected ? "misdirected" : "bad_request", status);
        const std::string body = "landjail: " + preq.error().message + "\n";
        const auto st = misdirected ? http::status::misdirected_request : http::status::bad_request;
        co_await respond(st, body, keep);
        co_return keep ? Next::KeepAlive : Next::Close;
    }
    const policy::Decision d = shared_.engine->evaluate(*preq);
    if (d.reason == policy::Reason::AmbiguousPath) {
        audit(preq->method, preq->url(), preq->host.text, d, {}, 400);
        const std::string body = "landjail: refused: the path of " + preq->method + " " +
                                 preq->url() + " holds " + preq->ambiguity +
                                 ".\nServers decode such paths differently, and the rules "
                                 "constrain paths. Send the path in its plain form (or set "
                                 "ambiguous_paths: literal in the config).\n";
        co_await respond(http::status::bad_request, body, false);
        co_return Next::Close;
    }
    if (!d.allowed) {
        audit(preq->method, preq->url(), preq->host.text, d, {}, 403);
        const std::string body = deny_body(*preq, d);
        co_await respond(http::status::forbidden, body, keep, true);
        co_return keep ? Next::KeepAlive : Next::Close;
    }
    if (audit_unavailable()) {
        audit(preq->method, preq->url(), preq->host.text, d, "audit_unavailable", 503);
        co_await respond(http::status::service_unavailable, kAuditUnavailableBody, false);
        co_return Next::Close;
    }
    co_return co_await forward(parser, *preq, d);
}

awaitable<Session::Next> Session::forward(http::request_parser<http::buffer_body>& parser,
                                          const policy::Request& preq, const policy::Decision& d) {
    Request& req = parser.get();
    Exchange x(*this, preq, d);
    const bool client_keep = req.keep_alive() && !worker_.draining;
    if (iequals(req[http::field::expect], "100-continue") && !parser.is_done()) {
        // Answer the client ourselves: the upstream never sees Expect, so no one waits.
        req.erase(http::field::expect);
        const std::string none;
        if (!co_await respond(http::status::continue_, none, true)) {
            x.end("client_aborted");
            co_return Next::Close;
        }
    }
    UpstreamFailure failure;
    bool reused = false;
    arm(Phase::Upstream, shared_.timeouts.upstream);
    std::unique_ptr<Stream> up =
        co_await worker_.upstream->acquire(preq.scheme, preq.host, preq.port, failure, reused);
    if (!up) {
        const bool keep = client_keep && parser.is_done();
        const std::string target = preq.host.authority() + ":" + std::to_string(preq.port);
        co_await respond_upstream_failure(x, target, failure, keep);
        co_return keep ? Next::KeepAlive : Next::Close;
    }
    upstream_ = up.get();
    rewrite_for_origin(req, preq, framing_of(parser));
    arm(Phase::Relay, shared_.timeouts.idle);
    if (const RelayEnd r = co_await relay<true>(client_, client_buf_, parser, *up); r.ec) {
        upstream_ = nullptr;
        co_await request_body_failed(x, r, preq);
        co_return Next::Close;
    }
    beast::flat_buffer up_buf;
    error_code ec;
    auto rp = co_await read_response(*up, up_buf, req.method() == http::verb::head, ec);
    if (!rp) {
        upstream_ = nullptr;
        co_await response_failed(x, ec, preq);
        co_return Next::Close;
    }
    Response& res = rp->get();
    const int code = static_cast<int>(res.result_int());
    if (code == 101 && preq.upgrade.empty()) {
        // An upgrade nobody asked for: the connection now speaks something else.
        upstream_ = nullptr;
        co_await response_failed(x, http::error::bad_status, preq);
        co_return Next::Close;
    }
    x.status(code);
    if (code == 101) {
        x.record();  // the exchange ends here; the tunnel that follows is opaque
        co_await relay_upgrade(res, *up, up_buf);
        co_return Next::Close;
    }
    co_return co_await relay_response(x, preq, *rp, up, up_buf, client_keep);
}

std::string_view Session::outcome_of(const RelayEnd& r, bool client_read) const {
    if (timed_out_) {
        return "idle_timeout";
    }
    const bool client_side = r.read_side == client_read;
    if (client_side) {
        return r.read_side && is_parse_error(r.ec) ? "bad_chunk" : "client_aborted";
    }
    return r.read_side && is_parse_error(r.ec) ? "upstream_bad_response" : "upstream_failed";
}

awaitable<void> Session::request_body_failed(Exchange& x, const RelayEnd& r,
                                             const policy::Request& preq) {
    x.end(outcome_of(r, true));
    if (timed_out_) {
        co_return;  // both streams are closed
    }
    if (r.read_side && is_parse_error(r.ec)) {
        x.status(400);
        x.record();
        const std::string body = "landjail: malformed request body: " + r.ec.message() + "\n";
        co_await respond(http::status::bad_request, body, false);
    } else if (!r.read_side) {
        const UpstreamFailure f{"send", r.ec.message()};
        co_await respond_upstream_failure(x, preq.host.authority(), f, false);
    }
}

awaitable<void> Session::response_failed(Exchange& x, const error_code& ec,
                                         const policy::Request& preq) {
    if (ec == asio::error::shut_down) {
        x.end("client_aborted");  // the client went away while 1xx responses were relayed
        co_return;
    }
    if (is_parse_error(ec)) {
        x.status(502);
        x.end("upstream_bad_response");
        x.record();
        const UpstreamFailure f{"response", "invalid response from the origin: " + ec.message()};
        co_await respond(http::status::bad_gateway, status_step_body(preq.host.authority(), f),
                         false);
        co_return;
    }
    const bool timeout = timed_out_;
    const UpstreamFailure f{
        "response", timeout ? "timed out waiting for the response headers" : ec.message(), timeout};
    co_await respond_upstream_failure(x, preq.host.authority(), f, false);
}

awaitable<void> Session::relay_upgrade(Response& res, Stream& up, beast::flat_buffer& up_buf) {
    strip_hop_by_hop(res, true);
    res.set(http::field::connection, "Upgrade");
    http::response<http::empty_body> head{res.result(), 11};
    for (const auto& f : res) {
        head.set(f.name_string(), f.value());
    }
    error_code ec;
    co_await http::async_write(client_, head, asio::redirect_error(use_awaitable, ec));
    if (!ec) {
        co_await splice(client_, client_buf_, up, up_buf);
    }
    upstream_ = nullptr;
}

awaitable<Session::Next> Session::relay_response(Exchange& x, const policy::Request& preq,
                                                 http::response_parser<http::buffer_body>& rp,
                                                 std::unique_ptr<Stream>& up,
                                                 beast::flat_buffer& up_buf, bool client_keep) {
    Response& res = rp.get();
    const bool upstream_keep = res.keep_alive();
    strip_hop_by_hop(res, false);
    frame(res, framing_of(rp));  // a body the origin ends by closing goes on chunked
    res.version(11);
    res.keep_alive(client_keep);
    arm(Phase::Relay, shared_.timeouts.idle);
    const RelayEnd r = spliceable(*up, rp) ? co_await splice_body(*up, up_buf, rp, client_)
                                           : co_await relay<false>(*up, up_buf, rp, client_);
    upstream_ = nullptr;
    if (r.complete) {
        if (upstream_keep && up_buf.size() == 0) {
            worker_.upstream->release(preq.scheme, preq.host, preq.port, std::move(up));
        }
        co_return client_keep ? Next::KeepAlive : Next::Close;
    }
    x.end(outcome_of(r, false));
    if (!r.header_sent && r.read_side && !timed_out_) {
        // Nothing reached the client yet: it gets a 502 instead of an empty reply.
        x.status(502);
        x.record();
        const UpstreamFailure f{"response",
                                "invalid response body from the origin: " +
                                    (r.ec ? r.ec.message() : std::string("incomplete"))};
        co_await respond(http::status::bad_gateway, status_step_body(preq.host.authority(), f),
                         false);
    } else if (!r.header_sent) {
        x.status(std::nullopt);
    }
    co_return Next::Close;
}

/// Reads response headers from the origin, passing 1xx interim responses (other than 101) on
/// to the client. Null with `ec` set on failure (asio::error::shut_down: the client is gone).
awaitable<std::unique_ptr<http::response_parser<http::buffer_body>>> Session::read_response(
    Stream& up, beast::flat_buffer& up_buf, bool head, error_code& ec) {
    for (;;) {
        auto rp = std::make_unique<http::response_parser<http::buffer_body>>();
        rp->header_limit(kHeaderLimit);
        rp->body_limit(std::numeric_limits<std::uint64_t>::max());
        rp->skip(head);
        arm(Phase::Upstream, shared_.timeouts.upstream);
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
        co_await http::async_write(client_, interim, asio::redirect_error(use_awaitable, ec));
        if (ec) {
            ec = asio::error::shut_down;
            co_return nullptr;
        }
    }
}

}  // namespace lj::proxy
