// SPDX-License-Identifier: Apache-2.0
// Request normalization: the one place that turns what a client sent (a method, an
// absolute URL, a Host header, a request target) into the canonical form the policy matches
// and the proxy forwards. Whatever is matched is what is forwarded, so a path such as
// `/api/../admin` or `/api/%2e%2e/admin` can never match `path=/api/*`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policy/result.hpp"

namespace lj::policy {

enum class HostKind : std::uint8_t { Name, IPv4, IPv6 };

/// A canonical host: lower-case ASCII name without its trailing dot, dotted-quad IPv4, or
/// IPv6 in RFC 5952 text form without brackets (a v4-mapped IPv6 address becomes IPv4).
struct Host {
    std::string text;
    HostKind kind = HostKind::Name;

    /// The host as it appears in a URL authority (IPv6 in brackets).
    std::string authority() const;
    bool operator==(const Host&) const = default;
};

/// Canonicalizes a host as sent by a client (URL authority, Host header, CONNECT target or
/// SNI), without a port. Accepts bracketed IPv6 literals. Names are lower-cased and lose one
/// trailing dot; numeric hosts are parsed as IPv4 the way URL parsers do (`127.1`,
/// `0x7f.0.0.1`) and printed dotted-quad, so the policy sees the address that would be
/// dialled. Rejected, with a message naming the host: empty names and labels, labels over
/// 63 and names over 253 characters, characters outside [A-Za-z0-9-_], non-ASCII
/// (internationalized) names, which must be written in their xn-- form, and IPv6 zone ids.
Result<Host> canonical_host(std::string_view raw);

/// Splits "host:port" / "[v6]:port" (CONNECT targets, Host headers). `default_port` is used
/// when no port is given; 0 means a port is required.
struct HostPort {
    Host host;
    std::uint16_t port = 0;
};
Result<HostPort> parse_host_port(std::string_view authority, std::uint16_t default_port);

/// Normalizes the path of a request target (no query, no fragment): percent-escapes of
/// unreserved characters are decoded, other escapes keep their encoding with upper-case hex
/// (`%2f` -> `%2F`: an encoded slash stays inside its segment), then dot segments are
/// removed as RFC 3986 §5.2.4 says. An empty path becomes "/". Rejected: malformed escapes,
/// escapes of NUL, control characters, spaces, backslashes and non-ASCII bytes, and a path
/// that does not start with '/'.
Result<std::string> normalize_path(std::string_view path);

/// Why the meaning of a raw request path (as sent, before normalize_path) depends on how the
/// origin decodes it, or "" when it does not. Origins differ on: an encoded '/' or '\' (%2F,
/// %5C: one segment to us, two to a decoding origin), ';' parameters (Tomcat and Spring drop
/// them, so `..;` is `..` and `secret;x` is `secret`), double encoding (`%25` and two hex
/// digits: `%252e` is '.' to an origin that decodes twice), percent-encoded bytes that are not
/// shortest-form UTF-8 (`%C0%AE` is '.' to IIS) and empty segments (`//`, which nginx merges).
/// The proxy refuses such paths when any rule constrains paths (Engine::evaluate).
std::string path_ambiguity(std::string_view raw_path);

/// The first step of normalize_path alone (no dot-segment removal): unreserved escapes
/// decoded, others upper-cased, invalid bytes rejected. Used for path patterns in rules.
Result<std::string> canonical_escapes(std::string_view path);

/// Upper-cases and validates an HTTP method token (RFC 9110 tchar).
Result<std::string> normalize_method(std::string_view method);

/// A request as the policy sees it: every field canonical.
struct Request {
    std::string method;  ///< upper-case token
    std::string scheme;  ///< "http" or "https"
    Host host;
    std::uint16_t port = 0;  ///< explicit, or the scheme's default
    std::string path;        ///< normalized; what is matched and forwarded
    std::string query;       ///< as sent, without '?'; never matched
    bool has_query = false;
    std::string upgrade;    ///< lower-case protocol the request upgrades to ("websocket"), or ""
    std::string ambiguity;  ///< path_ambiguity() of the path as sent, "" when none

    /// The normalized URL: scheme://authority[:port]path[?query] (default port omitted).
    std::string url() const;
};

/// Parses and normalizes `METHOD absolute-URL` (http or https). Rejected with a specific
/// message: other schemes, user information in the authority (`user@host`), a bad host or
/// port, and whatever normalize_path rejects.
Result<Request> parse_request(std::string_view method, std::string_view url);

/// Splits an origin-form request target ("/p?q") into a normalized Request fields for the
/// given scheme/host/port (used by the proxy inside CONNECT tunnels).
Result<Request> parse_origin_request(std::string_view method, std::string_view scheme,
                                     const Host& host, std::uint16_t port, std::string_view target);

}  // namespace lj::policy

namespace lj::policy {

/// A port number "1".."65535" ("0" too when allow_zero).
Result<std::uint16_t> parse_port(std::string_view text, bool allow_zero);

/// 443 for "https", else 80.
std::uint16_t default_port(std::string_view scheme);

}  // namespace lj::policy
