// SPDX-License-Identifier: Apache-2.0
// The session's pure parts, without a stream: the proxy's own answers (responses.hpp), the
// verdict on a request head (judge_request), the CONNECT plan (plan_tunnel), the answers to
// heads that cannot be read or framed, and the outcome names of failed relays.
#include <memory>
#include <string>
#include <vector>

#include "policy/engine.hpp"
#include "policy/rule.hpp"
#include "proxy/session/exchange.hpp"
#include "proxy/session/loop.hpp"
#include "proxy/session/responses.hpp"
#include "proxy/session/tunnel.hpp"
#include "tests/unit/lj_test.hpp"

namespace http = boost::beast::http;
namespace proxy = lj::proxy;
using lj::test::describe;

namespace {

std::unique_ptr<lj::policy::Engine> engine(std::vector<std::string> allow,
                                           std::vector<std::string> deny = {}) {
    auto parse = [](const std::vector<std::string>& texts) {
        std::vector<lj::policy::Rule> out;
        for (const std::string& t : texts) {
            auto r = lj::policy::parse_rule(t, "test");
            cr_assert(r.ok(), "%s: %s", t.c_str(), describe(r).c_str());
            out.push_back(std::move(*r));
        }
        return out;
    };
    return std::make_unique<lj::policy::Engine>(parse(allow), parse(deny));
}

http::request_header<> head(http::verb method, const char* target, const char* host) {
    http::request_header<> h;
    h.method(method);
    h.target(target);
    h.version(11);
    if (host) {
        h.set(http::field::host, host);
    }
    return h;
}

std::string wire(const proxy::Reply& r) {
    std::string out;
    http::serializer<false, http::string_body> sr{const_cast<proxy::Reply&>(r)};
    boost::system::error_code ec;
    do {
        sr.next(ec, [&](boost::system::error_code&, const auto& buffers) {
            for (const auto b : boost::beast::buffers_range(buffers)) {
                out.append(static_cast<const char*>(b.data()), b.size());
            }
            sr.consume(boost::beast::buffer_bytes(buffers));
        });
    } while (!ec && !sr.is_done());
    return out;
}

}  // namespace

Test(session_responses, text_reply_fields_and_head) {
    const proxy::Reply r = proxy::reply(http::status::bad_gateway, "why\n", true, false);
    cr_expect_eq(wire(r),
                 "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Server: landjail-proxy\r\nContent-Length: 4\r\n\r\nwhy\n");
    const proxy::Reply h = proxy::reply(http::status::bad_gateway, "why\n", false, true);
    cr_expect_eq(wire(h),
                 "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Server: landjail-proxy\r\nConnection: close\r\nContent-Length: 4\r\n\r\n",
                 "HEAD: the length of the body, not the body");
    cr_expect_eq(wire(proxy::continue_reply()), "HTTP/1.1 100 Continue\r\n\r\n");
}

Test(session_responses, deny_reply_names_the_request_and_the_fix) {
    auto e = engine({"domain=other.test"});
    auto req = lj::policy::parse_request("POST", "https://api.example.com/v1/x?token=1");
    cr_assert(req.ok());
    const auto d = e->evaluate(*req);
    const proxy::Reply r = proxy::deny_reply(*req, d, true, false);
    cr_expect_eq(r.result(), http::status::forbidden);
    cr_expect_eq(r["X-Landjail-Decision"], "deny");
    cr_expect(r.keep_alive());
    cr_expect(r.body().find("  POST https://api.example.com/v1/x?token=1\n") != std::string::npos,
              "%s", r.body().c_str());
    cr_expect(r.body().find("--allow 'domain=api.example.com method=POST path=/v1/x'") !=
                  std::string::npos,
              "%s", r.body().c_str());
}

Test(session_responses, deny_reply_names_the_deny_rule) {
    auto e = engine({"domain=example.com"}, {"domain=example.com method=DELETE"});
    auto req = lj::policy::parse_request("DELETE", "http://example.com/a");
    cr_assert(req.ok());
    const auto d = e->evaluate(*req);
    cr_expect(proxy::deny_body(*req, d).find(
                  "It is denied by the rule 'domain=example.com method=DELETE' (test).") !=
              std::string::npos);
}

Test(session_responses, connect_deny_and_tunnel_heads) {
    auto e = engine({"domain=example.com"});
    const auto host = lj::policy::canonical_host("other.test");
    cr_assert(host.ok());
    const auto d = e->decide_connect(host->text, host->kind, 443);
    const proxy::Reply r = proxy::connect_deny_reply("other.test:443", *host, d);
    cr_expect_eq(r.result(), http::status::forbidden);
    cr_expect(!r.keep_alive());
    cr_expect_eq(
        r.body(),
        "landjail: CONNECT other.test:443 refused: no rule allows any request to this "
        "host and port.\nTo allow it, add for example:\n\n  --allow 'domain=other.test'\n");
    cr_expect_eq(proxy::tunnel_open(true).reason(), "Connection established");
    cr_expect_eq(proxy::tunnel_open(false).reason(), "OK");
}

Test(session_responses, upstream_failure_body_names_the_step) {
    const proxy::UpstreamFailure f{"tls", "certificate verification failed: expired", false};
    cr_expect_eq(proxy::upstream_failure_body("example.com:443", f),
                 "landjail: could not reach example.com:443\n\nstep:   tls\n"
                 "error:  certificate verification failed: expired\n");
}

Test(session_responses, judge_request_verdicts) {
    auto e = engine({"domain=allowed.test path=/api/*"});
    auto v = proxy::judge_request(head(http::verb::get, "http://allowed.test/api/x", nullptr),
                                  nullptr, *e, true, false, false);
    cr_expect(!v.refusal, "an allowed request is forwarded");
    cr_expect(v.decision.allowed);
    v = proxy::judge_request(head(http::verb::get, "http://allowed.test/other", nullptr), nullptr,
                             *e, true, false, false);
    cr_assert(v.refusal);
    cr_expect_eq(v.refusal->reply.result(), http::status::forbidden);
    cr_expect(v.refusal->reply.keep_alive());
    cr_expect_eq(v.refusal->event.status, 403);
    v = proxy::judge_request(head(http::verb::get, "http://allowed.test/api/x", nullptr), nullptr,
                             *e, true, false, true);
    cr_assert(v.refusal, "the trail cannot be written: 503");
    cr_expect_eq(v.refusal->reply.result(), http::status::service_unavailable);
    cr_expect_eq(v.refusal->event.reason, "audit_unavailable");
    cr_expect(!v.refusal->reply.keep_alive());
    v = proxy::judge_request(head(http::verb::get, "http://allowed.test/api/%2e%2e%2fx", nullptr),
                             nullptr, *e, true, false, false);
    cr_assert(v.refusal, "an ambiguous path under path rules: 400");
    cr_expect_eq(v.refusal->reply.result(), http::status::bad_request);
    v = proxy::judge_request(head(http::verb::get, "/api/x", "allowed.test"), nullptr, *e, true,
                             false, false);
    cr_assert(v.refusal, "origin-form on the listener: 400");
    cr_expect_eq(v.refusal->event.reason, "bad_request");
    cr_expect(v.refusal->reply.keep_alive());
}

Test(session_responses, judge_request_inside_a_tunnel) {
    auto e = engine({"domain=allowed.test"});
    const auto host = lj::policy::canonical_host("allowed.test");
    proxy::TunnelOrigin origin{"https", *host, 443, false};
    auto v = proxy::judge_request(head(http::verb::get, "/x", "allowed.test"), &origin, *e, true,
                                  false, false);
    cr_expect(!v.refusal);
    cr_expect_eq(v.request.url(), "https://allowed.test/x");
    v = proxy::judge_request(head(http::verb::get, "/x", "other.test"), &origin, *e, true, false,
                             false);
    cr_assert(v.refusal);
    cr_expect_eq(v.refusal->reply.result(), http::status::misdirected_request);
    cr_expect_eq(v.refusal->event.reason, "misdirected");
    origin.misdirected = true;
    v = proxy::judge_request(head(http::verb::get, "/x", "allowed.test"), &origin, *e, true, false,
                             false);
    cr_assert(v.refusal, "SNI named another host");
    cr_expect_eq(v.refusal->reply.result(), http::status::misdirected_request);
}

Test(session_responses, plan_tunnel_cases) {
    auto e = engine({"domain=allowed.test", "domain=pass.test"});
    std::vector<lj::policy::HostPattern> pass;
    pass.push_back(*lj::policy::parse_rule("domain=pass.test")->host);
    auto p = proxy::plan_tunnel("allowed.test:443", *e, pass);
    cr_expect(!p.refusal && !p.passthrough);
    cr_expect_eq(p.port, 443);
    p = proxy::plan_tunnel("sub.pass.test:443", *e, pass);
    cr_expect(!p.refusal && p.passthrough);
    p = proxy::plan_tunnel("denied.test:443", *e, pass);
    cr_assert(p.refusal);
    cr_expect_eq(p.refusal->reply.result(), http::status::forbidden);
    cr_expect_eq(p.refusal->event.http_url, "denied.test:443");
    p = proxy::plan_tunnel("allowed.test", *e, pass);
    cr_assert(p.refusal, "no port");
    cr_expect_eq(p.refusal->reply.result(), http::status::bad_request);
}

Test(session_responses, unreadable_and_misframed_heads) {
    auto r = proxy::unreadable_head(http::error::header_limit, false, false);
    cr_assert(r);
    cr_expect_eq(r->reply.result(), http::status::request_header_fields_too_large);
    cr_expect_eq(r->event.reason, "header_too_large");
    cr_expect(!proxy::unreadable_head(boost::asio::error::eof, false, false));
    cr_expect(!proxy::unreadable_head(boost::asio::error::connection_reset, false, false));
    cr_expect(!proxy::unreadable_head(http::error::bad_version, true, false), "timed out: quiet");
    r = proxy::unreadable_head(http::error::bad_version, false, false);
    cr_assert(r);
    cr_expect_eq(r->reply.result(), http::status::bad_request);
    auto h = head(http::verb::post, "http://a.test/", "a.test");
    h.set(http::field::content_length, "1");
    h.set(http::field::transfer_encoding, "chunked");
    const std::string why = proxy::framing_problem(h);
    cr_assert(!why.empty());
    const auto f = proxy::framing_refusal(h, why, false);
    cr_expect_eq(f.event.outcome.value_or(""), "ambiguous_framing");
    cr_expect_eq(f.reply.body(), "landjail: bad request: " + why + "\n");
    cr_expect(proxy::framing_problem(head(http::verb::get, "http://a.test/", "a.test")).empty());
}

Test(session_responses, outcome_names) {
    proxy::RelayEnd r;
    r.read_side = true;
    r.ec = boost::asio::error::connection_reset;
    cr_expect_eq(proxy::outcome_of(r, true, false), "client_aborted");
    cr_expect_eq(proxy::outcome_of(r, false, false), "upstream_failed");
    r.ec = http::error::bad_chunk;
    cr_expect_eq(proxy::outcome_of(r, true, false), "bad_chunk");
    cr_expect_eq(proxy::outcome_of(r, false, false), "upstream_bad_response");
    r.read_side = false;  // the write failed: the other side
    cr_expect_eq(proxy::outcome_of(r, true, false), "upstream_failed");
    cr_expect_eq(proxy::outcome_of(r, false, false), "client_aborted");
    cr_expect_eq(proxy::outcome_of(r, true, true), "idle_timeout");
}
