// SPDX-License-Identifier: Apache-2.0
#include "proxy/base/resolve.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdlib>
#include <sstream>

#include "policy/request.hpp"

namespace lj::proxy {

Result<ResolveOverride> parse_resolve(std::string_view spec) {
    auto bad = [&](const std::string& why) {
        return make_error("--resolve '" + std::string(spec) + "': " + why +
                          "; the form is HOST:PORT:ADDR[:PORT2], e.g. example.com:443:127.0.0.1 "
                          "(an IPv6 ADDR in brackets)");
    };
    const std::size_t c1 = spec.find(':');
    const std::size_t c2 = c1 == std::string_view::npos ? c1 : spec.find(':', c1 + 1);
    if (c2 == std::string_view::npos) {
        return bad("missing fields");
    }
    auto host = policy::canonical_host(spec.substr(0, c1));
    if (!host) {
        return bad(host.error().message);
    }
    auto port = policy::parse_port(spec.substr(c1 + 1, c2 - c1 - 1), false);
    if (!port) {
        return bad(port.error().message);
    }
    ResolveOverride out{host->text, *port, {}, *port};
    std::string_view addr = spec.substr(c2 + 1);
    std::string_view to_port;
    if (!addr.empty() && addr.front() == '[') {
        const std::size_t close = addr.find(']');
        if (close == std::string_view::npos) {
            return bad("missing ']'");
        }
        to_port = addr.substr(close + 1);
        addr = addr.substr(1, close - 1);
        if (!to_port.empty() && to_port.front() != ':') {
            return bad("unexpected text after ']'");
        }
    } else if (const std::size_t c3 = addr.find(':'); c3 != std::string_view::npos) {
        to_port = addr.substr(c3);
        addr = addr.substr(0, c3);
    }
    const std::string text(addr);
    in6_addr bin{};
    if (::inet_pton(AF_INET, text.c_str(), &bin) != 1 &&
        ::inet_pton(AF_INET6, text.c_str(), &bin) != 1) {
        return bad("'" + text + "' is not an IP address");
    }
    out.address = text;
    if (!to_port.empty()) {
        auto p = policy::parse_port(to_port.substr(1), false);
        if (!p) {
            return bad(p.error().message);
        }
        out.to_port = *p;
    }
    return out;
}

Result<std::vector<ResolveOverride>> resolve_overrides(const std::vector<std::string>& flags) {
    std::vector<ResolveOverride> out;
    for (const std::string& spec : flags) {
        auto r = parse_resolve(spec);
        if (!r) {
            return r.error();
        }
        out.push_back(std::move(*r));
    }
    const char* env = std::getenv("LANDJAIL_RESOLVE");
    std::istringstream words(env ? env : "");
    for (std::string spec; words >> spec;) {
        auto r = parse_resolve(spec);
        if (!r) {
            return make_error("LANDJAIL_RESOLVE: " + r.error().message);
        }
        out.push_back(std::move(*r));
    }
    return out;
}

}  // namespace lj::proxy
