// SPDX-License-Identifier: Apache-2.0
// The session on in-memory streams (tests/unit/session_harness.hpp): what the client and the
// origin receive and what the audit trail says, for a denial, an allowed request (framing and
// Host rewritten, response relayed), upstream failures (502/504 naming the step), a client
// that closes mid-body, an oversized head (431), and the other ways an exchange ends.
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
namespace http = boost::beast::http;

namespace {

const char* const kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nok";

/// The connection ended cleanly: its coroutine returned, nothing escaped, nothing is left.
void expect_clean_end(const SessionResult& r) {
    cr_expect(r.finished, "the connection's coroutine did not return");
    cr_expect(r.exception.empty(), "exception: %s", r.exception.c_str());
    cr_expect_eq(r.live_sessions, 0u, "sessions left registered");
}

/// Exactly one event, with this decision, status (-1: none) and outcome ("" : none).
void expect_one_event(const SessionResult& r, const char* decision, int status,
                      const char* outcome) {
    cr_assert_eq(r.events.size(), 1u, "%zu events", r.events.size());
    const auto& e = r.events[0];
    cr_expect_eq(field(e, "decision"), decision);
    cr_expect_eq(field(e, "status"), status < 0 ? std::string() : std::to_string(status),
                 "status %s", field(e, "status").c_str());
    cr_expect_eq(field(e, "outcome"), outcome, "outcome '%s'", field(e, "outcome").c_str());
}

}  // namespace

Test(session, deny_answers_403_and_audits_it) {
    SessionCase c;
    c.client = "GET http://denied.test/secret?q=1 HTTP/1.1\r\nHost: denied.test\r\n\r\n";
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "no response: %s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 403u);
    cr_expect_eq((*res)["X-Landjail-Decision"], "deny");
    cr_expect_eq((*res)[http::field::content_type], "text/plain; charset=utf-8");
    const std::string& body = res->body();
    cr_expect(body.find("GET http://denied.test/secret?q=1") != std::string::npos, "%s",
              body.c_str());
    cr_expect(body.find("--allow 'domain=denied.test") != std::string::npos, "%s", body.c_str());
    cr_expect(r.to_origins.empty(), "nothing may reach an origin");
    expect_one_event(r, "deny", 403, "");
    cr_expect_eq(field(r.events[0], "http_url"), "http://denied.test/secret?q=1");
    cr_expect_eq(field(r.events[0], "reason"), "no_rule_matched");
}

Test(session, deny_rule_is_named) {
    SessionCase c;
    c.deny = {"domain=allowed.test path=/admin/*"};
    c.client = "GET http://allowed.test/admin/x HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res);
    cr_expect_eq(res->result_int(), 403u);
    cr_expect(res->body().find("the rule 'domain=allowed.test path=/admin/*'") != std::string::npos,
              "%s", res->body().c_str());
    expect_one_event(r, "deny", 403, "");
    cr_expect_eq(field(r.events[0], "matched_rule"), "domain=allowed.test path=/admin/*");
}

Test(session, allow_forwards_rewritten_request_and_relays_response) {
    SessionCase c;
    c.client =
        "POST http://Allowed.Test/a/../b?x=1 HTTP/1.1\r\nHost: allowed.test.\r\n"
        "Proxy-Connection: keep-alive\r\nConnection: X-Private\r\nX-Private: secret\r\n"
        "Content-Length: 5\r\n\r\nhello";
    c.origins = {{kOk, false}};
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    cr_assert_eq(r.to_origins.size(), 1u);
    const auto fwd = parse_request(r.to_origins[0]);
    cr_assert(fwd, "origin got: %s", printable(r.to_origins[0]).c_str());
    cr_expect_eq(fwd->target(), "/b?x=1");
    cr_expect_eq((*fwd)[http::field::host], "allowed.test");
    cr_expect_eq((*fwd)[http::field::content_length], "5");
    cr_expect_eq(fwd->body(), "hello");
    cr_expect(fwd->find("Proxy-Connection") == fwd->end(), "hop-by-hop field forwarded");
    cr_expect(fwd->find("X-Private") == fwd->end(), "a field Connection names was forwarded");
    const auto res = parse_response(r.to_client);
    cr_assert(res, "client got: %s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 200u);
    cr_expect_eq(res->body(), "ok");
    cr_expect(res->find("Keep-Alive") == res->end(), "hop-by-hop field relayed");
    cr_expect_eq(r.pooled, 1u, "the complete keep-alive response gives the origin back");
    expect_one_event(r, "allow", 200, "");
    cr_expect_eq(field(r.events[0], "http_url"), "http://allowed.test/b?x=1");
    cr_expect_eq(field(r.events[0], "matched_rule"), "domain=allowed.test");
}

Test(session, chunked_bodies_stay_chunked_both_ways) {
    SessionCase c;
    c.client =
        "PUT http://allowed.test/up HTTP/1.1\r\nHost: allowed.test\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    c.origins = {
        {"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\r\nabc\r\n0\r\n\r\n",
         false}};
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    const auto fwd = parse_request(r.to_origins.at(0));
    cr_assert(fwd, "origin got: %s", printable(r.to_origins[0]).c_str());
    cr_expect(fwd->chunked());
    cr_expect_eq(fwd->body(), "hello world");
    const auto res = parse_response(r.to_client);
    cr_assert(res);
    cr_expect_eq(res->result_int(), 201u);
    cr_expect(res->chunked());
    cr_expect_eq(res->body(), "abc");
    expect_one_event(r, "allow", 201, "");
}

Test(session, body_until_close_goes_on_chunked) {
    SessionCase c;
    c.client = "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.origins = {{"HTTP/1.1 200 OK\r\n\r\nstreamed until close", true}};
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "client got: %s", printable(r.to_client).c_str());
    cr_expect(res->chunked());
    cr_expect_eq(res->body(), "streamed until close");
    expect_one_event(r, "allow", 200, "");
}

Test(session, upstream_failure_answers_502_with_the_step) {
    SessionCase c;
    c.client = "GET http://allowed.test:8080/ HTTP/1.1\r\nHost: allowed.test:8080\r\n\r\n";
    c.upstream_failure = lj::proxy::UpstreamFailure{"connect", "Connection refused", false};
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "client got: %s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 502u);
    cr_expect_eq(res->body(),
                 "landjail: could not reach allowed.test:8080\n\nstep:   connect\n"
                 "error:  Connection refused\n");
    expect_one_event(r, "allow", 502, "upstream_failed");
}

Test(session, upstream_timeout_answers_504) {
    SessionCase c;
    c.client = "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.upstream_failure = lj::proxy::UpstreamFailure{"resolve", "timed out", true};
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res);
    cr_expect_eq(res->result_int(), 504u);
    cr_expect(res->body().find("step:   resolve") != std::string::npos, "%s", res->body().c_str());
    expect_one_event(r, "allow", 504, "upstream_timeout");
}

Test(session, response_head_never_coming_is_a_504, .timeout = 20) {
    SessionCase c;
    c.client = "GET http://allowed.test/slow HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.origins = {{"", false}};  // stays open and silent
    c.upstream_timeout = std::chrono::milliseconds(20);
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "client got: %s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 504u);
    cr_expect(res->body().find("timed out waiting for the response headers") != std::string::npos,
              "%s", res->body().c_str());
    expect_one_event(r, "allow", 504, "upstream_timeout");
}

Test(session, invalid_response_is_a_502) {
    SessionCase c;
    c.client = "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.origins = {{"HTTP/1.1 2OO OK\r\n\r\n", true}};
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "client got: %s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 502u);
    cr_expect(res->body().find("invalid response from the origin") != std::string::npos, "%s",
              res->body().c_str());
    expect_one_event(r, "allow", 502, "upstream_bad_response");
}

Test(session, origin_closing_without_answer_is_a_502) {
    SessionCase c;
    c.client = "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.origins = {{"", true}};
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "client got: %s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 502u);
    cr_expect(res->body().find("step:   response") != std::string::npos, "%s", res->body().c_str());
    expect_one_event(r, "allow", 502, "upstream_failed");
}

Test(session, client_closing_mid_body_is_client_aborted_once) {
    SessionCase c;
    c.client =
        "POST http://allowed.test/upload HTTP/1.1\r\nHost: allowed.test\r\n"
        "Content-Length: 100\r\n\r\n0123456789";
    c.origins = {{"", false}};
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    cr_expect_eq(r.to_client, "", "the client is gone: %s", printable(r.to_client).c_str());
    cr_assert_eq(r.to_origins.size(), 1u);
    cr_expect(r.to_origins[0].find("\r\n\r\n0123456789") != std::string::npos,
              "the head and the first bytes went on: %s", printable(r.to_origins[0]).c_str());
    expect_one_event(r, "allow", -1, "client_aborted");
}

Test(session, idle_client_mid_body_is_idle_timeout, .timeout = 20) {
    SessionCase c;
    c.client =
        "POST http://allowed.test/upload HTTP/1.1\r\nHost: allowed.test\r\n"
        "Content-Length: 100\r\n\r\n0123456789";
    c.client_eof = false;  // stays open and sends nothing more
    c.idle_timeout = std::chrono::milliseconds(20);
    c.origins = {{"", false}};
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    cr_expect_eq(r.to_client, "");
    expect_one_event(r, "allow", -1, "idle_timeout");
}

Test(session, oversized_head_answers_431) {
    SessionCase c;
    c.client = "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nX-Big: " +
               std::string(70 * 1024, 'a') + "\r\n\r\n";
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "client got: %s", printable(r.to_client.substr(0, 200)).c_str());
    cr_expect_eq(res->result_int(), 431u);
    cr_expect_eq(res->body(), "landjail: request headers larger than 64 KiB\n");
    cr_expect(r.to_origins.empty());
    expect_one_event(r, "deny", 431, "");
    cr_expect_eq(field(r.events[0], "reason"), "header_too_large");
}

Test(session, malformed_head_answers_400) {
    SessionCase c;
    c.client = "GET http://allowed.test/ HTTP/1.1\r\nBad Header\r\n\r\n";
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res);
    cr_expect_eq(res->result_int(), 400u);
    cr_expect(res->body().rfind("landjail: malformed request: ", 0) == 0, "%s",
              res->body().c_str());
    expect_one_event(r, "deny", 400, "");
    cr_expect_eq(field(r.events[0], "reason"), "bad_request");
}

Test(session, ambiguous_framing_answers_400) {
    SessionCase c;
    c.client =
        "POST http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 5\r\n"
        "Connection: content-length\r\n\r\nhello";
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "client got: %s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 400u);
    cr_expect(r.to_origins.empty());
    expect_one_event(r, "deny", 400, "ambiguous_framing");
}

Test(session, client_gone_before_a_head_is_no_event) {
    SessionCase c;
    c.client = "";  // connects, then closes
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    cr_expect_eq(r.to_client, "");
    cr_expect_eq(r.events.size(), 0u, "an undecided request has no event");
}

Test(session, cut_head_is_a_malformed_request) {
    SessionCase c;
    c.client = "GET http://allowed.test/ HT";  // then EOF
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 400u);
    expect_one_event(r, "deny", 400, "");
}

Test(session, head_request_gets_no_body) {
    SessionCase c;
    c.client = "HEAD http://denied.test/ HTTP/1.1\r\nHost: denied.test\r\n\r\n";
    const SessionResult r = run_session(c);
    const std::size_t end = r.to_client.find("\r\n\r\n");
    cr_assert(end != std::string::npos, "%s", printable(r.to_client).c_str());
    cr_expect_eq(r.to_client.size(), end + 4, "a body after the head of a HEAD answer: %s",
                 printable(r.to_client).c_str());
    cr_expect(r.to_client.find("Content-Length: ") != std::string::npos);
    expect_one_event(r, "deny", 403, "");
}

Test(session, keep_alive_serves_pipelined_requests) {
    SessionCase c;
    c.client =
        "GET http://allowed.test/one HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
        "GET http://denied.test/two HTTP/1.1\r\nHost: denied.test\r\n\r\n"
        "GET http://allowed.test/three HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.origins = {{kOk, false}, {kOk, false}};
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    cr_assert_eq(r.events.size(), 3u);
    cr_expect_eq(field(r.events[0], "http_url"), "http://allowed.test/one");
    cr_expect_eq(field(r.events[1], "decision"), "deny");
    cr_expect_eq(field(r.events[2], "http_url"), "http://allowed.test/three");
    cr_expect_eq(r.to_origins.size(), 2u);
    cr_expect(r.to_origins[1].rfind("GET /three HTTP/1.1\r\n", 0) == 0, "%s",
              printable(r.to_origins[1]).c_str());
}

Test(session, expect_continue_is_answered_by_the_proxy) {
    SessionCase c;
    c.client =
        "POST http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nExpect: 100-continue\r\n"
        "Content-Length: 2\r\n\r\nhi";
    c.origins = {{kOk, false}};
    const SessionResult r = run_session(c);
    cr_expect(r.to_client.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0) == 0, "%s",
              printable(r.to_client).c_str());
    const auto fwd = parse_request(r.to_origins.at(0));
    cr_assert(fwd);
    cr_expect(fwd->find(http::field::expect) == fwd->end(), "Expect reached the origin");
    cr_expect_eq(fwd->body(), "hi");
    expect_one_event(r, "allow", 200, "");
}

Test(session, interim_responses_are_passed_on) {
    SessionCase c;
    c.client = "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.origins = {{"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + std::string(kOk), false}};
    const SessionResult r = run_session(c);
    cr_expect(r.to_client.rfind("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", 0) == 0, "%s",
              printable(r.to_client).c_str());
    cr_expect(r.to_client.find("HTTP/1.1 200 OK\r\n") != std::string::npos);
    expect_one_event(r, "allow", 200, "");
}

Test(session, websocket_upgrade_relays_raw_bytes) {
    SessionCase c;
    c.client =
        "GET http://allowed.test/ws HTTP/1.1\r\nHost: allowed.test\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\nfrom-client";
    c.origins = {
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\n\r\nfrom-origin",
         true}};
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    cr_expect(r.to_client.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0, "%s",
              printable(r.to_client).c_str());
    cr_expect(r.to_client.size() > 11 &&
                  r.to_client.compare(r.to_client.size() - 11, 11, "from-origin") == 0,
              "%s", printable(r.to_client).c_str());
    cr_expect(r.to_origins.at(0).find("\r\n\r\nfrom-client") != std::string::npos, "%s",
              printable(r.to_origins[0]).c_str());
    expect_one_event(r, "allow", 101, "");
}

Test(session, unasked_upgrade_is_a_502) {
    SessionCase c;
    c.client = "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
    c.origins = {{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", true}};
    const SessionResult r = run_session(c);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 502u);
    expect_one_event(r, "allow", 502, "upstream_bad_response");
}

Test(session, audit_required_and_unwritable_answers_503, .timeout = 30) {
    SessionCase c;
    c.audit_refusing = true;
    c.client =
        "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
        "GET http://denied.test/ HTTP/1.1\r\nHost: denied.test\r\n\r\n";
    const SessionResult r = run_session(c);
    expect_clean_end(r);
    const auto res = parse_response(r.to_client);
    cr_assert(res, "%s", printable(r.to_client).c_str());
    cr_expect_eq(res->result_int(), 503u);
    cr_expect(!res->keep_alive(), "the connection ends after the 503");
    cr_expect(r.to_origins.empty(), "nothing is forwarded");
    expect_one_event(r, "allow", 503, "");
    cr_expect_eq(field(r.events[0], "reason"), "audit_unavailable");
}

Test(session, answer_after_a_head_request_has_its_body) {
    SessionCase c;
    c.client =
        "HEAD http://denied.test/ HTTP/1.1\r\nHost: denied.test\r\n\r\n"
        "GET http://allowed.test/ HTTP/1.1\r\nX-Big: " +
        std::string(70 * 1024, 'a') + "\r\n\r\n";
    const SessionResult r = run_session(c);
    const std::size_t second = r.to_client.find("HTTP/1.1 431 ");
    cr_assert(second != std::string::npos, "%s", printable(r.to_client).c_str());
    const auto res = parse_response(r.to_client.substr(second));
    cr_assert(res, "%s", printable(r.to_client.substr(second)).c_str());
    cr_expect_eq(res->body(), "landjail: request headers larger than 64 KiB\n",
                 "the 431 lost its body to the HEAD before it");
}
