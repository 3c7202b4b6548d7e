// SPDX-License-Identifier: Apache-2.0
#include "landjail/supervisor/notify_io.hpp"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace lj::jail {

NotifyIo::Received KernelNotifyIo::recv(seccomp_notif& req) {
    req = {};
    if (ioctl(listener_, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0) {
        return Received::Notification;
    }
    if (errno == EINTR) {
        return Received::Nothing;  // a signal for us
    }
    if (errno != ENOENT) {
        return Received::Finished;
    }
    // ENOENT: the caller went away before we received it, or no process uses the filter any
    // more (then RECV fails at once, every time: stop rather than spin).
    pollfd p{listener_, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) ? Received::Finished : Received::Nothing;
}

void KernelNotifyIo::send(const seccomp_notif_resp& resp) {
    seccomp_notif_resp copy = resp;
    while (ioctl(listener_, SECCOMP_IOCTL_NOTIF_SEND, &copy) != 0 && errno == EINTR) {
    }
}

bool KernelNotifyIo::id_valid(std::uint64_t id) {
    return ioctl(listener_, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

int KernelNotifyIo::addfd(const seccomp_notif_addfd& add) {
    seccomp_notif_addfd copy = add;
    return ioctl(listener_, SECCOMP_IOCTL_NOTIF_ADDFD, &copy) < 0 ? errno : 0;
}

bool KernelNotifyIo::set_sync_wakeup() {
    // Not in Debian 12's 6.1 headers.
    constexpr unsigned long kSetFlags = _IOW('!', 4, std::uint64_t);  // NOTIF_SET_FLAGS
    constexpr unsigned long kSyncWakeUp = 1;  // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
    return ioctl(listener_, kSetFlags, kSyncWakeUp) == 0;
}

int KernelNotifyIo::getfd(int pidfd, int fd, UniqueFd& out) {
    const long got = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    if (got < 0) {
        return errno;
    }
    out.reset(static_cast<int>(got));
    return 0;
}

int KernelNotifyIo::connect(int sock, const sockaddr_storage& addr, socklen_t len) {
    return ::connect(sock, reinterpret_cast<const sockaddr*>(&addr), len) == 0 ? 0 : errno;
}

int KernelNotifyIo::send_signal(int pidfd, int sig, siginfo_t* info, unsigned flags) {
    return syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags) == 0 ? 0 : errno;
}

}  // namespace lj::jail
