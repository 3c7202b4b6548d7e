// SPDX-License-Identifier: Apache-2.0
// The proxy's session on in-memory streams (beast::test::stream) for the unit tests: one
// client connection served by the product's roles (proxy/session/loop.hpp and the rooms it
// calls), with a fake upstream pool whose origin connections are test streams too, a real
// Auditor writing to a file, and optionally a beast::test::fail_count shared by the proxy's
// side of every stream (client and origins), so a test can fail the Nth I/O operation. The
// session runs to its end on one io_context (co_spawn + io.run()); what each side received
// and the audit events are returned. session_harness.cpp instantiates the session for the
// test worker once.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/net.hpp"
#include "proxy/session/upstream.hpp"

namespace lj::test {

/// What one origin connection does: `bytes` are its answer (there before the request
/// arrives), then it closes (EOF) unless `close` is false (it stays open and silent).
struct OriginReply {
    std::string bytes;
    bool close = true;
};

struct SessionCase {
    std::vector<std::string> allow{"domain=allowed.test", "domain=pass.test"};
    std::vector<std::string> deny;
    std::vector<std::string> passthrough;  ///< tls.passthrough host names
    std::string client;                    ///< the bytes the client sends
    bool client_eof = true;                ///< then it half-closes (else it stays open)
    /// One per upstream connection, in the order they are made (missing: an empty origin
    /// that closes at once).
    std::vector<OriginReply> origins;
    /// Every upstream connection fails so (the step and detail the 502/504 names).
    std::optional<proxy::UpstreamFailure> upstream_failure;
    /// fail_count: this many I/O operations on the proxy's streams succeed, then every one
    /// fails with `fail_with`.
    std::optional<std::size_t> fail_after;
    proxy::error_code fail_with = boost::asio::error::connection_reset;
    std::chrono::milliseconds header_timeout{30000};
    std::chrono::milliseconds idle_timeout{30000};
    std::chrono::milliseconds upstream_timeout{30000};
    /// audit.required with a trail that cannot be written (an audit socket nobody listens
    /// on): allowed requests and passthrough tunnels are refused with 503.
    bool audit_refusing = false;
    /// tls.intercept_denied (off here: the cases that ask for it say so).
    bool intercept_denied = false;
    /// Session correlation targets (allow-rule syntax); empty: off.
    std::vector<std::string> correlation;
};

struct SessionResult {
    std::string to_client;                ///< every byte the proxy wrote to the client
    std::vector<std::string> to_origins;  ///< what each origin connection received
    std::vector<nlohmann::json> events;   ///< the session's audit events, in order
    std::size_t pooled = 0;               ///< upstream connections given back to the pool
    bool finished = false;                ///< the connection's coroutine returned
    std::string exception;                ///< what escaped it, if anything
    std::size_t live_sessions = 0;        ///< still registered with the worker afterwards
};

/// Serves `c.client` on a fresh worker until the connection ends and the io_context runs out
/// of work. Fails the test (Criterion) when the harness itself cannot be set up.
SessionResult run_session(const SessionCase& c);

/// A parsed HTTP/1.1 message from `bytes` (the first one), or nullopt when it does not parse.
std::optional<proxy::http::request<proxy::http::string_body>> parse_request(
    const std::string& bytes);
std::optional<proxy::http::response<proxy::http::string_body>> parse_response(
    const std::string& bytes);

/// "<string>" of an event field, or "" when absent/null (for messages and comparisons).
std::string field(const nlohmann::json& event, const char* key);

}  // namespace lj::test
