// SPDX-License-Identifier: Apache-2.0
// CONNECT on in-memory streams (tests/unit/session_harness.hpp): refused at once, opened for
// plain HTTP inside (each inner request decided and audited on its own, the tunnel's host
// enforced), and passthrough tunnels relayed untouched with their one event. TLS inside a
// tunnel needs the product's socket Stream and is covered by tests/integration/test_tls.py.
#include <string>

#include "proxy/net.hpp"  // Boost before Criterion, whose macros break boost/intrusive
#include "tests/unit/lj_test.hpp"
#include "tests/unit/session_harness.hpp"

using lj::test::field;
using lj::test::parse_request;
using lj::test::parse_response;
using lj::test::printable;
using lj::test::run_session;
using lj::test::SessionCase;
using lj::test::SessionResult;

namespace {

const std::string kEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";

void expect_clean_end(const SessionResult& r) {
    cr_expect(r.finished, "the connection's coroutine did not return");
    cr_expect(r.exception.empty(), "exception: %s", r.exception.c_str());
    cr_expect_eq(r.live_sessions, 0u);
}

}  // namespace

Test(session_tunnel, connect_to_an_unnamed_host_is_403) {
    SessionCase c;
    c.client = "CONNECT denied.test:443 HTTP/1.1\r\nHost: denied.test:443\r\n\r\n";
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 403u);
    cr_expect_eq((*res)["X-Landjail-Decision"], "deny");
    cr_expect(res->body().find("--allow 'domain=denied.test'") != std::string::npos, "%s",
              res->body().c_str());
    cr_expect(r.to_origins.empty());
    cr_assert_eq(r.events.size(), 1u);
    cr_expect_eq(field(r.events[0], "http_method"), "CONNECT");
    cr_expect_eq(field(r.events[0], "http_url"), "denied.test:443");
    cr_expect_eq(field(r.events[0], "status"), "403");
}

Test(session_tunnel, bad_target_is_400) {
    SessionCase c;
    c.client = "CONNECT allowed.test HTTP/1.1\r\n\r\n";
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 400u);
    cr_expect(res->body().rfind("landjail: bad CONNECT target: ", 0) == 0, "%s",
              res->body().c_str());
    cr_assert_eq(r.events.size(), 1u);
    cr_expect_eq(field(r.events[0], "reason"), "bad_request");
}

Test(session_tunnel, plain_http_inside_is_decided_per_request) {
    SessionCase c;
    c.client =
        "CONNECT allowed.test:80 HTTP/1.1\r\nHost: allowed.test:80\r\n\r\n"
        "GET /inside HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.origins = {{"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ninside", false}};
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    cr_assert(r.to_client.rfind(kEstablished, 0) == 0, "%s", printable(r.to_client).c_str());
    const auto res = parse_response(r.to_client.substr(kEstablished.size()));
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->body(), "inside");
    const auto fwd = parse_request(r.to_origins.at(0));
    cr_assert(fwd);
    cr_expect_eq(fwd->target(), "/inside");
    cr_assert_eq(r.events.size(), 1u, "one event, for the request inside (not the CONNECT)");
    cr_expect_eq(field(r.events[0], "http_url"), "http://allowed.test/inside");
    cr_expect_eq(field(r.events[0], "decision"), "allow");
}

Test(session_tunnel, request_for_another_host_inside_is_421) {
    SessionCase c;
    c.client =
        "CONNECT allowed.test:80 HTTP/1.1\r\n\r\n"
        "GET /x HTTP/1.1\r\nHost: pass.test\r\n\r\n";
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client.substr(kEstablished.size()));
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 421u);
    cr_expect(r.to_origins.empty());
    cr_assert_eq(r.events.size(), 1u);
    cr_expect_eq(field(r.events[0], "reason"), "misdirected");
}

Test(session_tunnel, denied_request_inside_is_403) {
    SessionCase c;
    c.allow = {"domain=allowed.test path=/public/*"};
    c.client =
        "CONNECT allowed.test:80 HTTP/1.1\r\n\r\n"
        "GET /private HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client.substr(kEstablished.size()));
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 403u);
    cr_expect(r.to_origins.empty());
    cr_assert_eq(r.events.size(), 1u);
    cr_expect_eq(field(r.events[0], "http_url"), "http://allowed.test/private");
}

Test(session_tunnel, tls_on_a_test_stream_ends_the_connection) {
    SessionCase c;
    c.client = "CONNECT allowed.test:443 HTTP/1.1\r\n\r\n\x16\x03\x01\x02\x00";
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    cr_expect_eq(r.to_client, kEstablished);
    cr_expect_eq(r.events.size(), 0u);
}

Test(session_tunnel, passthrough_relays_bytes_untouched_with_one_event) {
    SessionCase c;
    c.passthrough = {"pass.test"};
    c.client = "CONNECT pass.test:443 HTTP/1.1\r\n\r\nclient-bytes";
    c.client_eof = false;  // a tunnel ends when either side does: the origin ends this one
    c.origins = {{"origin-bytes", true}};
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    cr_expect_eq(r.to_client, "HTTP/1.1 200 OK\r\n\r\norigin-bytes");
    cr_expect_eq(r.to_origins.at(0), "client-bytes");
    cr_assert_eq(r.events.size(), 1u);
    cr_expect_eq(field(r.events[0], "reason"), "passthrough");
    cr_expect_eq(field(r.events[0], "status"), "200");
    cr_expect_eq(field(r.events[0], "http_url"), "pass.test:443");
}

Test(session_tunnel, passthrough_origin_unreachable_is_502) {
    SessionCase c;
    c.passthrough = {"pass.test"};
    c.client = "CONNECT pass.test:443 HTTP/1.1\r\n\r\n";
    c.upstream_failure = lj::proxy::UpstreamFailure{"connect", "Connection refused", false};
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 502u);
    cr_expect(res->body().find("step:   connect") != std::string::npos);
    cr_assert_eq(r.events.size(), 1u);
    cr_expect_eq(field(r.events[0], "decision"), "deny");
    cr_expect_eq(field(r.events[0], "status"), "502");
}

Test(session_tunnel, passthrough_with_unwritable_required_audit_is_503, .timeout = 30) {
    SessionCase c;
    c.passthrough = {"pass.test"};
    c.audit_refusing = true;
    c.client = "CONNECT pass.test:443 HTTP/1.1\r\n\r\n";
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 503u);
    cr_expect(r.to_origins.empty(), "no connection to the origin");
    cr_assert_eq(r.events.size(), 1u);
    cr_expect_eq(field(r.events[0], "reason"), "audit_unavailable");
    cr_expect_eq(field(r.events[0], "http_url"), "pass.test:443");
}
