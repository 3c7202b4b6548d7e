// SPDX-License-Identifier: Apache-2.0
// The session's error paths, every one of them: for each kind of exchange, the Nth I/O
// operation on the proxy's streams (client and origin, beast::test::fail_count) fails with a
// connection reset, and every operation after it, for N = 0, 1, 2, … until the run no longer
// differs from the run without failures. Whatever the point, the connection ends (its
// coroutine returns, nothing escapes, nothing stays registered) and the trail holds exactly
// one event for the request — the reference run's decision — or none when the request was
// never decided, in which case nothing reached an origin.
#include <string>
#include <vector>

#include "proxy/net.hpp"  // Boost before Criterion, whose macros break boost/intrusive
#include "tests/unit/lj_test.hpp"
#include "tests/unit/session_harness.hpp"

using lj::test::field;
using lj::test::printable;
using lj::test::run_session;
using lj::test::SessionCase;
using lj::test::SessionResult;

namespace {

constexpr std::size_t kMaxPoints = 400;

/// The events without their time.
std::vector<nlohmann::json> timeless(std::vector<nlohmann::json> events) {
    for (auto& e : events) {
        e.erase("time");
    }
    return events;
}

bool same_run(const SessionResult& a, const SessionResult& b) {
    return a.to_client == b.to_client && a.to_origins == b.to_origins &&
           timeless(a.events) == timeless(b.events);
}

/// The event's identity: what was decided about which request.
std::string decided(const nlohmann::json& e) {
    return field(e, "decision") + " " + field(e, "http_method") + " " + field(e, "http_url") + " " +
           field(e, "reason");
}

void check_point(const SessionCase& c, std::size_t n, const SessionResult& r,
                 const SessionResult& ref) {
    cr_assert(r.finished, "fail at %zu: the connection did not end", n);
    cr_assert(r.exception.empty(), "fail at %zu: exception %s", n, r.exception.c_str());
    cr_assert_eq(r.live_sessions, 0u, "fail at %zu: a session stayed registered", n);
    cr_assert(r.events.size() <= 1, "fail at %zu: %zu events for one request", n, r.events.size());
    if (r.events.empty()) {
        for (const std::string& got : r.to_origins) {
            cr_assert(got.empty(), "fail at %zu: no event, yet the origin got %s", n,
                      printable(got).c_str());
        }
        return;
    }
    cr_assert_eq(decided(r.events[0]), decided(ref.events.at(0)),
                 "fail at %zu: another decision (%s)", n, c.client.c_str());
}

/// Runs `c` failing at every point; returns how many points were tried.
std::size_t every_fail_point(SessionCase c) {
    const SessionResult ref = run_session(c);
    cr_assert(ref.finished && ref.exception.empty(), "the reference run failed");
    cr_assert_eq(ref.events.size(), 1u, "the reference run has %zu events", ref.events.size());
    std::size_t same = 0;
    std::size_t n = 0;
    for (; n < kMaxPoints && same < 3; ++n) {
        c.fail_after = n;
        const SessionResult r = run_session(c);
        check_point(c, n, r, ref);
        same = same_run(r, ref) ? same + 1 : 0;
    }
    cr_assert(same == 3, "still failing after %zu points", kMaxPoints);
    return n;
}

}  // namespace

Test(session_faults, denied_request, .timeout = 60) {
    SessionCase c;
    c.client = "GET http://denied.test/x HTTP/1.1\r\nHost: denied.test\r\n\r\n";
    cr_expect(every_fail_point(c) > 3);
}

Test(session_faults, allowed_request_with_body, .timeout = 60) {
    SessionCase c;
    c.client =
        "POST http://allowed.test/x HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 5\r\n\r\n"
        "hello";
    c.origins = {{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false}};
    cr_expect(every_fail_point(c) > 5);
}

Test(session_faults, chunked_both_ways, .timeout = 60) {
    SessionCase c;
    c.client =
        "PUT http://allowed.test/x HTTP/1.1\r\nHost: allowed.test\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    c.origins = {
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false}};
    cr_expect(every_fail_point(c) > 5);
}

Test(session_faults, body_until_close, .timeout = 60) {
    SessionCase c;
    c.client = "GET http://allowed.test/x HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.origins = {{"HTTP/1.1 200 OK\r\n\r\nuntil the end", true}};
    cr_expect(every_fail_point(c) > 5);
}

Test(session_faults, expect_continue_and_interim, .timeout = 60) {
    SessionCase c;
    c.client =
        "POST http://allowed.test/x HTTP/1.1\r\nHost: allowed.test\r\nExpect: 100-continue\r\n"
        "Content-Length: 2\r\n\r\nhi";
    c.origins = {
        {"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
         false}};
    cr_expect(every_fail_point(c) > 5);
}

Test(session_faults, websocket_upgrade, .timeout = 60) {
    SessionCase c;
    c.client =
        "GET http://allowed.test/ws HTTP/1.1\r\nHost: allowed.test\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n\r\nfrom-client";
    c.origins = {
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\n\r\nfrom-origin",
         true}};
    cr_expect(every_fail_point(c) > 5);
}

Test(session_faults, request_inside_a_tunnel, .timeout = 60) {
    SessionCase c;
    c.client =
        "CONNECT allowed.test:80 HTTP/1.1\r\n\r\n"
        "GET /inside HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.origins = {{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false}};
    cr_expect(every_fail_point(c) > 5);
}

Test(session_faults, passthrough_tunnel, .timeout = 60) {
    SessionCase c;
    c.passthrough = {"pass.test"};
    c.client = "CONNECT pass.test:443 HTTP/1.1\r\n\r\nclient-bytes";
    c.client_eof = false;  // a tunnel ends when either side does: the origin ends it
    c.origins = {{"origin-bytes", true}};
    cr_expect(every_fail_point(c) > 3);
}

Test(session_faults, upstream_failure, .timeout = 60) {
    SessionCase c;
    c.client = "GET http://allowed.test/x HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.upstream_failure = lj::proxy::UpstreamFailure{"connect", "Connection refused", false};
    cr_expect(every_fail_point(c) > 2);
}

Test(session_faults, client_closing_mid_body, .timeout = 60) {
    SessionCase c;
    c.client =
        "POST http://allowed.test/upload HTTP/1.1\r\nHost: allowed.test\r\n"
        "Content-Length: 100\r\n\r\n0123456789";  // then EOF, 90 bytes short
    c.origins = {{"", false}};
    cr_expect(every_fail_point(c) > 3);
}

Test(session_faults, oversized_head, .timeout = 60) {
    SessionCase c;
    c.client = "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nX-Big: " +
               std::string(70 * 1024, 'a') + "\r\n\r\n";
    cr_expect(every_fail_point(c) > 1);
}

Test(session_faults, ambiguous_framing, .timeout = 60) {
    SessionCase c;
    c.client =
        "POST http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\nhello";
    cr_expect(every_fail_point(c) > 1);
}
