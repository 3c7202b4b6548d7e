// SPDX-License-Identifier: Apache-2.0
// One audit event (DESIGN §6), as the proxy and the supervisor make it and every format and
// sink reads it.
#pragma once

#include <optional>
#include <string>

namespace lj::proxy {

/// One decided request or refused connection. Unset optionals are written as null (or
/// omitted where DESIGN §6 shows no field).
struct AuditEvent {
    std::string event = "http_request";  ///< http_request | connect_denied | socket_denied
    bool allowed = false;                ///< "decision": "allow" | "deny"
    std::string http_method;             ///< CONNECT for tunnel decisions
    std::string http_url;  ///< normalized URL (https://host/path?query, or host:port for CONNECT)
    std::string host;
    std::optional<std::string> matched_rule;  ///< the rule as written; null when none
    std::string reason;  ///< policy::to_string(Reason), or "bad_request", "misdirected", …
    std::optional<int> pid;
    std::optional<std::string> exe;
    std::optional<std::string> destination;  ///< supervisor events: "addr:port"
    std::optional<int> status;               ///< HTTP status sent to the client, when known
    /// How the exchange ended when it did not end normally: client_aborted, client_timeout,
    /// bad_chunk, upstream_failed, upstream_timeout, upstream_bad_response, idle_timeout.
    std::optional<std::string> outcome;
};

}  // namespace lj::proxy
