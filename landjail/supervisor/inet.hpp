// SPDX-License-Identifier: Apache-2.0
// Socket addresses as the supervisor compares them: the child's destination (read from its
// memory) against the proxy's exact address.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

#include "policy/result.hpp"

namespace lj::jail {

/// An IPv4 or IPv6 socket address in canonical form (v4-mapped IPv6 becomes IPv4), the
/// form in which the supervisor compares the child's destination with the proxy's address.
struct InetAddr {
    int family = 0;               ///< AF_INET or AF_INET6
    unsigned char addr[16] = {};  ///< 4 or 16 bytes
    std::uint16_t port = 0;       ///< host order
    std::uint32_t scope = 0;      ///< IPv6 scope id

    bool operator==(const InetAddr&) const = default;
    std::string text() const;  ///< "127.0.0.1:8080", "[::1]:443"
};

/// Parses a sockaddr_in/sockaddr_in6 of `len` bytes; nullopt when too short or another family.
std::optional<InetAddr> canonical_inet(const sockaddr_storage& sa, socklen_t len);

/// AF_INET, AF_INET6, AF_UNIX, AF_NETLINK, AF_PACKET by name, other families by number.
std::string socket_family_name(long family);
/// SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET by name (flags ignored), others by number.
std::string socket_type_name(long type);
/// "socket(AF_INET, SOCK_DGRAM, 0)": a socket() call as the audit trail names it.
std::string socket_call_text(long family, long type, long protocol);

/// "127.0.0.1:3128" or "[::1]:3128" (a literal address, not a name).
Result<InetAddr> parse_inet(const std::string& text);

}  // namespace lj::jail
