// SPDX-License-Identifier: Apache-2.0
// Descriptors the command would inherit from whoever started landjail (DESIGN §3: "nothing
// else leaves"). The seccomp filter checks socket() and connect(); a socket that is already
// open and connected sends without either, and an io_uring whose SQPOLL thread belongs to a
// process outside makes sockets there. landjail closes such descriptors before it starts the
// proxy and the command, unless named with --keep-fd.
#pragma once

#include <string>
#include <vector>

namespace lj::jail {

/// One inherited descriptor that leads out of the jail.
struct InheritedFd {
    int fd = -1;
    /// What it is, for the user and the audit trail: "socket(AF_INET, SOCK_DGRAM, 17)
    /// 127.0.0.1:40000 -> 127.0.0.1:53", "io_uring", "/dev/net/tun".
    std::string what;
};

/// The descriptors of this process that are open without close-on-exec (so COMMAND would
/// inherit them) and lead out of the jail: sockets of every family but AF_UNIX (without
/// Landlock scopes, `scoped` false, unix datagram sockets too: they can send to any abstract
/// address), io_uring instances and TUN/TAP devices. Those in `keep` are left out. In
/// increasing order of descriptor.
std::vector<InheritedFd> find_inherited(const std::vector<int>& keep, bool scoped);

}  // namespace lj::jail
