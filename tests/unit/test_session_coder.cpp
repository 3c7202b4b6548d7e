// SPDX-License-Identifier: Apache-2.0
// The session inside Coder (issue 15), on in-memory streams: a denied tunnel to port 443 is
// intercepted (tls.intercept_denied) and each request inside denied with its full URL, a
// tunnel that ends without a request keeps its CONNECT event, other ports are refused at
// CONNECT; session correlation sets the session id and the sequence number of the request's
// own event, replacing the client's, on target requests only.
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
const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

}  // namespace

Test(session_coder, denied_tunnel_is_intercepted_and_requests_denied_inside) {
    SessionCase c;
    c.intercept_denied = true;
    c.client =
        "CONNECT denied.test:443 HTTP/1.1\r\nHost: denied.test:443\r\n\r\n"
        "GET /api/x?q=1 HTTP/1.1\r\nHost: denied.test:443\r\n\r\n";
    const SessionResult r = run_session(c);
    cr_assert(r.to_client.rfind(kEstablished, 0) == 0, "%s", printable(r.to_client).c_str());
    const auto res = parse_response(r.to_client.substr(kEstablished.size()));
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 403u);
    cr_expect(r.to_origins.empty(), "nothing goes upstream");
    cr_assert_eq(r.events.size(), 1u, "the request's event only, not the CONNECT's");
    cr_expect_eq(field(r.events[0], "http_method"), "GET");
    cr_expect_eq(field(r.events[0], "http_url"), "http://denied.test:443/api/x?q=1");
    cr_expect_eq(field(r.events[0], "decision"), "deny");
}

Test(session_coder, intercepted_tunnel_without_request_keeps_its_connect_event) {
    SessionCase c;
    c.intercept_denied = true;
    c.client = "CONNECT denied.test:443 HTTP/1.1\r\nHost: denied.test:443\r\n\r\n";
    const SessionResult r = run_session(c);
    cr_expect_eq(r.to_client, kEstablished);
    cr_assert_eq(r.events.size(), 1u);
    cr_expect_eq(field(r.events[0], "http_method"), "CONNECT");
    cr_expect_eq(field(r.events[0], "http_url"), "denied.test:443");
    cr_expect_eq(field(r.events[0], "decision"), "deny");
    cr_expect_eq(field(r.events[0], "outcome"), "no_request");
    cr_expect_eq(field(r.events[0], "status"), "");
}

Test(session_coder, other_ports_are_refused_at_connect) {
    SessionCase c;
    c.intercept_denied = true;
    c.client = "CONNECT denied.test:8443 HTTP/1.1\r\nHost: denied.test:8443\r\n\r\n";
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 403u);
    cr_assert_eq(r.events.size(), 1u);
    cr_expect_eq(field(r.events[0], "status"), "403");
}

Test(session_coder, correlation_headers_carry_the_events_number) {
    SessionCase c;
    c.correlation = {"domain=allowed.test method=GET path=/gw/*"};
    c.client =
        "POST http://allowed.test/other HTTP/1.1\r\nHost: allowed.test\r\n"
        "Content-Length: 0\r\n\r\n"
        "POST http://allowed.test/gw/v1 HTTP/1.1\r\nHost: allowed.test\r\n"
        "X-Coder-Agent-Firewall-Session-Id: forged\r\n"
        "x-coder-agent-firewall-sequence-number: 77\r\nContent-Length: 0\r\n\r\n";
    c.origins = {{kOk, false}, {kOk, false}};
    const SessionResult r = run_session(c);
    cr_assert_eq(r.events.size(), 2u, "%s", printable(r.to_client).c_str());
    cr_assert(!r.to_origins.empty());
    std::string all;
    for (const std::string& o : r.to_origins) {
        all += o;
    }
    const std::size_t second = all.find("POST /gw/v1 ");
    cr_assert(second != std::string::npos, "%s", printable(all).c_str());
    const auto first = parse_request(all.substr(0, second));
    const auto gw = parse_request(all.substr(second));
    cr_assert(first && gw, "%s", printable(all).c_str());
    cr_expect(first->find("X-Coder-Agent-Firewall-Session-Id") == first->end());
    cr_expect_eq((*gw)["X-Coder-Agent-Firewall-Session-Id"], "unit");
    const std::string seq(((*gw)["X-Coder-Agent-Firewall-Sequence-Number"]));
    cr_expect(all.find(": 77\r\n") == std::string::npos, "the client's value is gone");
    cr_expect(all.find("forged") == std::string::npos, "the client's value is gone");
    std::string event_seq;
    for (const auto& e : r.events) {
        if (field(e, "http_url") == "http://allowed.test/gw/v1") {
            event_seq = field(e, "sequence_number");
        }
    }
    cr_expect_eq(seq, event_seq, "header %s, event %s", seq.c_str(), event_seq.c_str());
    cr_expect(!seq.empty());
}

Test(session_coder, the_shims_tunnels_are_refused_at_connect) {
    SessionCase c;
    c.intercept_denied = true;
    c.client =
        "CONNECT denied.test:443 HTTP/1.1\r\nHost: denied.test:443\r\n"
        "X-Landjail-Tunnel: raw\r\n\r\n";
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 403u);
    cr_assert_eq(r.events.size(), 1u);
    cr_expect_eq(field(r.events[0], "http_method"), "CONNECT");
    cr_expect_eq(field(r.events[0], "status"), "403");
}
