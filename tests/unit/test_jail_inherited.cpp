// SPDX-License-Identifier: Apache-2.0
// find_inherited: which descriptors the command would inherit that lead out of the jail
// (landjail/inherited.hpp). Each test opens its own descriptors in its own process.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "landjail/jail/inherited.hpp"
#include "proxy/base/fd.hpp"
#include "tests/unit/lj_test.hpp"

using lj::UniqueFd;
using lj::jail::find_inherited;
using lj::jail::InheritedFd;

namespace {

const InheritedFd* find(const std::vector<InheritedFd>& all, int fd) {
    const auto it =
        std::find_if(all.begin(), all.end(), [fd](const InheritedFd& f) { return f.fd == fd; });
    return it == all.end() ? nullptr : &*it;
}

}  // namespace

Test(jail_inherited, network_sockets_without_cloexec) {
    const UniqueFd udp(socket(AF_INET, SOCK_DGRAM, 0));
    const UniqueFd tcp(socket(AF_INET6, SOCK_STREAM, 0));
    const UniqueFd private_udp(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const auto all = find_inherited({}, true);
    const InheritedFd* u = find(all, udp.get());
    cr_assert(u, "the UDP socket is not listed");
    cr_expect_eq(u->what, std::string("socket(AF_INET, SOCK_DGRAM, 17)"));
    const InheritedFd* t = find(all, tcp.get());
    cr_assert(t, "the TCP socket is not listed");
    cr_expect_eq(t->what, std::string("socket(AF_INET6, SOCK_STREAM, 6)"));
    cr_expect(!find(all, private_udp.get()), "a close-on-exec socket is not inherited");
}

Test(jail_inherited, connected_socket_names_both_ends) {
    const UniqueFd listener(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    cr_assert_eq(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
    const UniqueFd udp(socket(AF_INET, SOCK_DGRAM, 0));
    cr_assert_eq(connect(udp.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    const auto all = find_inherited({}, true);
    const InheritedFd* u = find(all, udp.get());
    cr_assert(u);
    const std::string peer = " -> 127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
    cr_expect(u->what.find(peer) != std::string::npos, "%s", u->what.c_str());
    cr_expect(u->what.rfind("socket(AF_INET, SOCK_DGRAM, 17) 127.0.0.1:", 0) == 0, "%s",
              u->what.c_str());
}

Test(jail_inherited, unix_sockets_and_kept_descriptors) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    const UniqueFd a(sv[0]), b(sv[1]);
    int dv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, dv), 0);
    const UniqueFd c(dv[0]), d(dv[1]);
    const UniqueFd udp(socket(AF_INET, SOCK_DGRAM, 0));
    const auto scoped = find_inherited({udp.get()}, true);
    cr_expect(!find(scoped, a.get()) && !find(scoped, c.get()), "unix sockets are kept");
    cr_expect(!find(scoped, udp.get()), "--keep-fd keeps it");
    // Without Landlock scopes a unix datagram socket can send to any abstract address.
    const auto unscoped = find_inherited({}, false);
    cr_expect(!find(unscoped, a.get()), "a unix stream socket is kept");
    cr_expect(find(unscoped, c.get()), "a unix datagram socket is closed without scopes");
}

Test(jail_inherited, pipes_and_files_are_not_ways_out) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    const UniqueFd r(p[0]), w(p[1]);
    const UniqueFd null(open("/dev/null", O_RDONLY));
    const auto all = find_inherited({}, false);
    cr_expect(!find(all, r.get()) && !find(all, w.get()) && !find(all, null.get()));
}
