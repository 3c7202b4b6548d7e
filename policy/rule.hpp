// SPDX-License-Identifier: Apache-2.0
// Rules: the boundary-compatible grammar `key=value [key=value …]` with the keys domain,
// method, path and (landjail's extensions) port and upgrade, parsed into a matcher that needs no
// further allocation. See DESIGN §4 and man/landjail.yaml.5 for the semantics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/request.hpp"
#include "policy/result.hpp"

namespace lj::policy {

/// `domain=` value. Name patterns match the name and all its subdomains; a `*` label matches
/// exactly one label (so `*.x` means "subdomains of x only"); Any is a bare `*`. IP patterns
/// match that exact address only.
struct HostPattern {
    enum class Kind : std::uint8_t { Any, Name, IPv4, IPv6 };
    Kind kind = Kind::Any;
    std::vector<std::string> labels;  ///< Name: lower-case labels left to right, "*" = wildcard
    std::string address;              ///< IPv4/IPv6: canonical text (as Host::text)

    bool matches(std::string_view host, HostKind host_kind) const;
    /// The longest run of literal labels at the right end ("example.com" for `a.*.example.com`),
    /// empty when the last label is a wildcard or for Any; the address for IP patterns.
    std::string index_key() const;
};

/// `path=` entry: segments of a normalized path pattern. A "*" segment matches one segment;
/// a trailing "*" matches one or more remaining segments.
struct PathPattern {
    std::vector<std::string> segments;
    bool matches(std::string_view normalized_path) const;
};

struct Rule {
    std::string text;    ///< as written (surrounding whitespace trimmed)
    std::string origin;  ///< where it came from: "file.yaml:3:5", "--allow", "LANDJAIL_ALLOW", …

    std::optional<HostPattern> host;   ///< absent: no domain= key, the rule matches every host
    std::vector<std::string> methods;  ///< upper-case; empty = any
    std::vector<PathPattern> paths;    ///< empty = any
    std::vector<std::uint16_t> ports;  ///< empty = any
    /// upgrade=: lower-case protocol tokens ("websocket") and "none" (a request without an
    /// upgrade); empty = any. A request that asks to upgrade turns into an opaque tunnel
    /// after the origin's 101, so a rule can allow a path without allowing that.
    std::vector<std::string> upgrades;

    bool matches_host(std::string_view host, HostKind kind) const;
    bool matches_port(std::uint16_t port) const;
    bool matches_method(std::string_view upper_method) const;
    bool matches_path(std::string_view normalized_path) const;
    /// `upgrade`: the lower-case protocol the request asks to upgrade to, "" for none.
    bool matches_upgrade(std::string_view upgrade) const;
};

/// Parses one rule. A rule without domain= matches every host (boundary's `path=/api/*`); the
/// caller warns about it. Errors quote the rule and say what is wrong: empty rule, a token
/// without '=', an unknown or
/// repeated key, an empty or malformed value (a scheme, port or path inside
/// `domain=`, a host pattern ending in `*`, a `*` that is not a whole label or segment, a
/// non-ASCII name, a bad method token, a port outside 1..65535, `.`/`..` in a path pattern, an
/// upgrade= value that is not a token).
Result<Rule> parse_rule(std::string_view text, std::string origin = {});

/// The narrowest rule that would allow `request` (domain, method, path and a non-default
/// port), for deny messages: "domain=api.github.com method=POST path=/repos". The path is
/// left out when it holds characters the rule grammar gives a meaning to (',' and '*').
std::string suggested_rule(const Request& request);

}  // namespace lj::policy
