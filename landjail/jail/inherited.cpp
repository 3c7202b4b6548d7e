// SPDX-License-Identifier: Apache-2.0
#include "landjail/jail/inherited.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>

#include "landjail/supervisor/inet.hpp"

namespace lj::jail {
namespace {

constexpr unsigned kTunMajor = 10;   // misc devices
constexpr unsigned kTunMinor = 200;  // /dev/net/tun

int sockopt_int(int fd, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_SOCKET, name, &v, &len) == 0 ? v : -1;
}

/// " 127.0.0.1:40000 -> 127.0.0.1:53" for an inet socket (each side when known).
std::string endpoints(int fd) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    std::string out;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
        if (const auto a = canonical_inet(sa, len); a && a->port != 0) {
            out += " " + a->text();
        }
    }
    len = sizeof sa;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
        if (const auto a = canonical_inet(sa, len)) {
            out += " -> " + a->text();
        }
    }
    return out;
}

/// What `fd` is when it leads out of the jail; nullopt otherwise.
std::optional<std::string> way_out(int fd, bool scoped) {
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        return std::nullopt;
    }
    if (S_ISSOCK(st.st_mode)) {
        const int family = sockopt_int(fd, SO_DOMAIN);
        const int type = sockopt_int(fd, SO_TYPE);
        if (family == AF_UNIX && (scoped || type != SOCK_DGRAM)) {
            return std::nullopt;
        }
        return socket_call_text(family, type, sockopt_int(fd, SO_PROTOCOL)) + endpoints(fd);
    }
    if (S_ISCHR(st.st_mode) && major(st.st_rdev) == kTunMajor && minor(st.st_rdev) == kTunMinor) {
        return "/dev/net/tun";
    }
    char link[64];
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = readlink(path.c_str(), link, sizeof link - 1);
    if (n > 0 && std::string(link, static_cast<std::size_t>(n)) == "anon_inode:[io_uring]") {
        return "io_uring";
    }
    return std::nullopt;
}

}  // namespace

std::vector<InheritedFd> find_inherited(const std::vector<int>& keep, bool scoped) {
    std::vector<int> open_fds;
    const std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/fd"), closedir);
    if (!dir) {
        return {};
    }
    while (const dirent* e = readdir(dir.get())) {
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') {
            open_fds.push_back(std::atoi(e->d_name));
        }
    }
    std::sort(open_fds.begin(), open_fds.end());
    std::vector<InheritedFd> out;
    for (const int fd : open_fds) {
        const int flags = fcntl(fd, F_GETFD);
        if (flags < 0 || (flags & FD_CLOEXEC) ||
            std::find(keep.begin(), keep.end(), fd) != keep.end()) {
            continue;  // the directory's own descriptor, ours, or one the user keeps
        }
        if (auto what = way_out(fd, scoped)) {
            out.push_back({fd, std::move(*what)});
        }
    }
    return out;
}

}  // namespace lj::jail
