// SPDX-License-Identifier: Apache-2.0
#include "landjail/supervisor/inet.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace lj::jail {

std::string InetAddr::text() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(family, addr, buf, sizeof buf);
    std::string host = buf;
    if (family == AF_INET6) {
        host = "[" + host + "]";
    }
    return host + ":" + std::to_string(port);
}

std::optional<InetAddr> canonical_inet(const sockaddr_storage& sa, socklen_t len) {
    InetAddr out;
    if (sa.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(sa);
        out.family = AF_INET;
        std::memcpy(out.addr, &in.sin_addr, 4);
        out.port = ntohs(in.sin_port);
        return out;
    }
    // The kernel accepts the 24-byte RFC 2133 form (without sin6_scope_id).
    if (sa.ss_family == AF_INET6 && len >= 24) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(sa);
        out.port = ntohs(in6.sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            out.family = AF_INET;
            std::memcpy(out.addr, in6.sin6_addr.s6_addr + 12, 4);
            return out;
        }
        out.family = AF_INET6;
        std::memcpy(out.addr, &in6.sin6_addr, 16);
        out.scope = len >= sizeof(sockaddr_in6) ? in6.sin6_scope_id : 0;
        return out;
    }
    return std::nullopt;
}

std::string socket_family_name(long family) {
    switch (family) {
        case AF_INET:
            return "AF_INET";
        case AF_INET6:
            return "AF_INET6";
        case AF_UNIX:
            return "AF_UNIX";
        case AF_NETLINK:
            return "AF_NETLINK";
        case AF_PACKET:
            return "AF_PACKET";
        default:
            return std::to_string(family);
    }
}

std::string socket_type_name(long type) {
    switch (type & 0xf) {
        case SOCK_STREAM:
            return "SOCK_STREAM";
        case SOCK_DGRAM:
            return "SOCK_DGRAM";
        case SOCK_RAW:
            return "SOCK_RAW";
        case SOCK_SEQPACKET:
            return "SOCK_SEQPACKET";
        default:
            return std::to_string(type & 0xf);
    }
}

std::string socket_call_text(long family, long type, long protocol) {
    return "socket(" + socket_family_name(family) + ", " + socket_type_name(type) + ", " +
           std::to_string(protocol) + ")";
}

Result<InetAddr> parse_inet(const std::string& text) {
    const std::size_t close = text.rfind("]:");
    const std::size_t colon = !text.empty() && text.front() == '['
                                  ? (close == std::string::npos ? close : close + 1)
                                  : text.rfind(':');
    if (colon == std::string::npos || colon + 1 == text.size()) {
        return make_error("'" + text + "': expected ADDR:PORT, e.g. 127.0.0.1:3128");
    }
    std::string host = text.substr(0, colon);
    const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) {
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string::npos) {
        return make_error("'" + text + "': write an IPv6 address in brackets, e.g. [::1]:3128");
    }
    const std::string port_text = text.substr(colon + 1);
    unsigned long port = 0;
    for (const char c : port_text) {
        port = c >= '0' && c <= '9' && port <= 65535 ? port * 10 + static_cast<unsigned>(c - '0')
                                                     : 70000;
    }
    if (port == 0 || port > 65535) {
        return make_error("'" + text + "': the port must be a number from 1 to 65535");
    }
    sockaddr_storage sa{};
    socklen_t len = 0;
    auto& in = reinterpret_cast<sockaddr_in&>(sa);
    auto& in6 = reinterpret_cast<sockaddr_in6&>(sa);
    if (!bracketed && inet_pton(AF_INET, host.c_str(), &in.sin_addr) == 1) {
        in.sin_family = AF_INET;
        len = sizeof in;
    } else if (bracketed && inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        len = sizeof in6;
    } else {
        return make_error("'" + text + "': '" + host +
                          "' is not an IPv4 or IPv6 address (names are not resolved here)");
    }
    auto addr = canonical_inet(sa, len);
    addr->port = static_cast<std::uint16_t>(port);
    return *addr;
}

}  // namespace lj::jail
