// SPDX-License-Identifier: Apache-2.0
// `--resolve HOST:PORT:ADDR[:PORT2]` (as curl's): parsed once here, for the proxy, which
// connects there, and for landjail, which checks the option before it starts anything.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/result.hpp"

namespace lj::proxy {

/// Connections to HOST:PORT go to ADDR (port PORT2 when given, else PORT). ADDR is an IPv4
/// address or a bracketed IPv6 address.
struct ResolveOverride {
    std::string host;  ///< canonical host text
    std::uint16_t port = 0;
    std::string address;  ///< the IP address as written, without brackets (inet_pton-valid)
    std::uint16_t to_port = 0;
};

/// Errors quote the option and say what the form is.
Result<ResolveOverride> parse_resolve(std::string_view spec);

/// Every override asked for: `flags` (--resolve), then the words of $LANDJAIL_RESOLVE (for
/// programs that start landjail without flags of ours, as Coder's modules start boundary).
/// Errors name the option or the variable.
Result<std::vector<ResolveOverride>> resolve_overrides(const std::vector<std::string>& flags);

}  // namespace lj::proxy
