// SPDX-License-Identifier: Apache-2.0
#include "landjail/supervisor/supervisor.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string_view>

#include "landjail/jail/seccomp_filter.hpp"
#include "landjail/supervisor/procfs.hpp"
#include "proxy/audit/event.hpp"
#include "proxy/base/fd.hpp"

namespace lj::jail {
namespace {

constexpr unsigned kPidfdThread = O_EXCL;  // PIDFD_THREAD (Linux 6.9)

/// A pidfd for the thread that made the call, so that pidfd_getfd sees its file table.
UniqueFd pidfd_for(pid_t tid) {
    long fd = syscall(SYS_pidfd_open, tid, kPidfdThread);
    if (fd < 0 && errno == EINVAL) {  // before 6.9: only thread-group leaders
        const auto tgid = proc_field(proc_path(tid, "status"), "Tgid:");
        fd = tgid ? syscall(SYS_pidfd_open, std::atoi(tgid->c_str()), 0) : -1;
    }
    return UniqueFd(static_cast<int>(fd));
}

/// The destination of a unix connect for the audit trail: the path, or @name if abstract.
std::string unix_text(const sockaddr_storage& sa, socklen_t len) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(sa);
    const std::size_t n = len > sizeof(sa_family_t) ? len - sizeof(sa_family_t) : 0;
    if (n == 0) {
        return "unix:(unnamed)";
    }
    if (un.sun_path[0] == '\0') {
        return "unix:@" + std::string(un.sun_path + 1, n - 1);
    }
    return "unix:" + std::string(un.sun_path, strnlen(un.sun_path, n));
}

/// The type (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET) of the caller's unix socket `fd`,
/// found by its inode in /proc/TID/net/unix; nullopt when `fd` is not a unix socket.
std::optional<int> unix_socket_type(pid_t tid, int fd) {
    char link[64];
    const ssize_t n = readlink(proc_path(tid, ("fd/" + std::to_string(fd)).c_str()).c_str(), link,
                               sizeof link - 1);
    if (n <= 0) {
        return std::nullopt;
    }
    const std::string target(link, static_cast<std::size_t>(n));
    if (target.rfind("socket:[", 0) != 0) {
        return std::nullopt;
    }
    const std::string inode = target.substr(8, target.size() - 9);
    std::ifstream in(proc_path(tid, "net/unix"));
    std::string line;
    std::getline(in, line);  // header: Num RefCount Protocol Flags Type St Inode Path
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string num, refs, proto, flags, type, state, ino;
        f >> num >> refs >> proto >> flags >> type >> state >> ino;
        if (ino == inode) {
            return static_cast<int>(std::strtol(type.c_str(), nullptr, 16));
        }
    }
    return std::nullopt;
}

}  // namespace

Supervisor::Supervisor(SupervisorConfig config)
    : config_(std::move(config)),
      proxy_pid_(config_.proxy_pid),
      proxy_pidfd_(config_.proxy_pidfd >= 0 ? fcntl(config_.proxy_pidfd, F_DUPFD_CLOEXEC, 0) : -1) {
    // The command is our child and has not been reaped yet: its start time is readable.
    if (const auto stat = read_stat(config_.child)) {
        child_start_ = stat->start;
    }
}

bool Supervisor::proxy_gone() const {
    pollfd p{proxy_pidfd_.get(), POLLIN, 0};
    return proxy_pidfd_.valid() && poll(&p, 1, 0) == 1;
}

bool Supervisor::use_sync_wakeup() const {
    // Not in Debian 12's 6.1 headers.
    constexpr unsigned long kSetFlags =
        _IOW('!', 4, std::uint64_t);          // SECCOMP_IOCTL_NOTIF_SET_FLAGS
    constexpr unsigned long kSyncWakeUp = 1;  // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
    return ioctl(config_.listener, kSetFlags, kSyncWakeUp) == 0;
}

bool Supervisor::valid(std::uint64_t id) const {
    return ioctl(config_.listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

void Supervisor::respond(std::uint64_t id, int err, bool continue_call) const {
    seccomp_notif_resp resp{};
    resp.id = id;
    resp.error = err ? -err : 0;
    resp.val = 0;
    resp.flags = continue_call ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
    // ENOENT: the caller died or was interrupted by a fatal signal meanwhile; nothing to do.
    while (ioctl(config_.listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0 && errno == EINTR) {
    }
}

bool Supervisor::handle_one() {
    Notification n;
    if (ioctl(config_.listener, SECCOMP_IOCTL_NOTIF_RECV, &n.req) != 0) {
        if (errno == EINTR) {
            return true;  // a signal for us
        }
        if (errno != ENOENT) {
            return false;
        }
        // ENOENT: the caller went away before we received it, or no process uses the filter
        // any more (then RECV fails at once, every time: stop rather than spin).
        pollfd p{config_.listener, POLLIN, 0};
        return !(poll(&p, 1, 0) == 1 && (p.revents & POLLHUP));
    }
    static const int nr_connect = SYS_connect;
    static const int nr_socket = SYS_socket;
    const int nr = n.req.data.nr;
    if (nr == nr_connect) {
        on_connect(n);
    } else if (nr == nr_socket) {
        on_socket(n);
    } else if (nr == SYS_kill || nr == SYS_tkill || nr == SYS_tgkill || nr == SYS_rt_sigqueueinfo ||
               nr == SYS_rt_tgsigqueueinfo || nr == SYS_pidfd_send_signal) {
        on_signal(n);
    } else if (nr == SYS_setpgid) {
        on_setpgid(n);
    } else if (nr == SYS_fcntl) {
        on_fcntl(n);
    } else if (nr == SYS_prlimit64 || nr == SYS_sched_setaffinity || nr == SYS_sched_setscheduler ||
               nr == SYS_sched_setparam || nr == SYS_sched_setattr || nr == SYS_setpriority ||
               nr == SYS_ioprio_set) {
        on_target(n);
    } else {
        respond(n.req.id, ENOSYS);  // the filter notifies nothing else
    }
    return true;
}

Supervisor::Caller* Supervisor::caller(pid_t tid) {
    // A cached entry may name a thread that exited, its id now another thread's: it is
    // checked where that matters (perform: pidfd_getfd fails; deny: pidfd_send_signal 0).
    if (auto it = callers_.find(tid); it != callers_.end()) {
        it->second.fresh = false;
        return &it->second;
    }
    if (callers_.size() >= kMaxCallers) {
        callers_.clear();
    }
    Caller c;
    c.pidfd = pidfd_for(tid);
    if (!c.pidfd.valid()) {
        return nullptr;
    }
    c.mem.reset(open(proc_path(tid, "mem").c_str(), O_RDONLY | O_CLOEXEC));
    c.mem_errno = c.mem.valid() ? 0 : errno;
    c.fresh = true;
    return &(callers_[tid] = std::move(c));
}

void Supervisor::on_connect(const Notification& n, bool retried) {
    const int fd = static_cast<int>(n.arg(0));
    const auto len = static_cast<int>(static_cast<std::uint32_t>(n.arg(2)));
    if (len < 0 || static_cast<std::size_t>(len) > sizeof(sockaddr_storage)) {
        respond(n.req.id, EINVAL);
        return;
    }
    sockaddr_storage sa{};
    // Opened before ID_VALID below, so that the pidfd perform() uses names the caller.
    Caller* c = caller(n.pid());
    if (!read_address(n, c, len, sa)) {
        return;
    }
    // A fresh entry was opened by thread id after the notification: the id may name another
    // task by now, unless the caller is still waiting. A cached entry's task was alive before
    // the call, so while it lives it is the caller; perform() and current() find out if not.
    if ((!c || c->fresh) && !valid(n.req.id)) {
        return;
    }
    const auto slen = static_cast<socklen_t>(len);
    const int family = len >= static_cast<int>(sizeof(sa_family_t)) ? sa.ss_family : AF_UNSPEC;
    if (family == AF_INET || family == AF_INET6) {
        const auto dest = canonical_inet(sa, slen);
        if (!dest) {
            respond(n.req.id, EINVAL);
            return;
        }
        if (c && !c->fresh && !retried && !current(*c, *dest == config_.proxy)) {
            // We read a cached thread's memory, and that thread is gone: read again.
            callers_.erase(n.pid());
            on_connect(n, true);
            return;
        }
        if (*dest == config_.proxy && proxy_gone()) {
            deny_connect(n, dest->text(), kConnectDeniedErrno, "proxy_gone");
        } else if (*dest == config_.proxy) {
            perform(n, c, fd, sa, slen);
        } else {
            deny_connect(n, dest->text(), kConnectDeniedErrno, "not_the_proxy");
        }
        return;
    }
    if (config_.landlock_abi >= 6) {
        // Not an inet address in our copy. If the program flips it to one before the kernel
        // reads it again, Landlock refuses the connect (no TCP port is allowed) and the
        // abstract-unix scope keeps it inside the jail: CONTINUE is safe here.
        respond(n.req.id, 0, true);
        return;
    }
    if (family == AF_UNIX) {
        connect_unix(n, c, fd, sa, slen);
        return;
    }
    perform(n, c, fd, sa, slen);
}

bool Supervisor::read_address(const Notification& n, Caller* c, int len, sockaddr_storage& sa) {
    if (len == 0) {
        return true;
    }
    // Read the address exactly once; everything after uses this copy.
    if (!c || !c->mem.valid()) {
        const int err = c ? c->mem_errno : errno;
        if (valid(n.req.id)) {
            deny_connect(n, "(unreadable: " + std::string(std::strerror(err)) + ")", EPERM,
                         "address_unreadable");
        }
        return false;
    }
    const auto want = static_cast<std::size_t>(len);
    ssize_t got = pread(c->mem.get(), &sa, want, static_cast<off_t>(n.arg(1)));
    if (got != len) {
        // The cached file may name the memory the thread had before an execve.
        c->mem.reset(open(proc_path(n.pid(), "mem").c_str(), O_RDONLY | O_CLOEXEC));
        got = c->mem.valid() ? pread(c->mem.get(), &sa, want, static_cast<off_t>(n.arg(1))) : -1;
    }
    if (got != len) {
        if (valid(n.req.id)) {
            respond(n.req.id, EFAULT);
        }
        return false;
    }
    return true;
}

void Supervisor::connect_unix(const Notification& n, Caller* c, int fd, const sockaddr_storage& sa,
                              socklen_t slen) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(sa);
    if (slen > sizeof(sa_family_t) && un.sun_path[0] == '\0') {
        // Without the Landlock scope we cannot tell an abstract socket of the jail from one
        // outside it.
        deny_connect(n, unix_text(sa, slen), EPERM, "abstract_unix_socket");
        return;
    }
    if (slen > sizeof(sa_family_t) && un.sun_path[0] != '/') {
        // We connect from our own working directory: make the path the caller's.
        const std::size_t n_path = strnlen(un.sun_path, slen - sizeof(sa_family_t));
        const std::string abs = proc_path(n.pid(), "cwd") + "/" + std::string(un.sun_path, n_path);
        if (abs.size() >= sizeof(un.sun_path)) {
            respond(n.req.id, ENAMETOOLONG);
            return;
        }
        sockaddr_storage copy{};
        auto& cu = reinterpret_cast<sockaddr_un&>(copy);
        cu.sun_family = AF_UNIX;
        std::memcpy(cu.sun_path, abs.c_str(), abs.size() + 1);
        perform(n, c, fd, copy, static_cast<socklen_t>(sizeof(sa_family_t) + abs.size() + 1));
        return;
    }
    perform(n, c, fd, sa, slen);
}

void Supervisor::report_client(const Notification& n, int sock) const {
    if (!config_.client) {
        return;
    }
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    if (getsockname(sock, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
        return;
    }
    const auto addr = canonical_inet(local, len);
    if (addr && addr->port != 0) {
        config_.client(n.pid(), addr->port);
    }
}

bool Supervisor::current(Caller& c, bool allowed) {
    if (allowed && config_.getfd) {
        return true;  // perform() checks it for free: pidfd_getfd fails for a dead task
    }
    return syscall(SYS_pidfd_send_signal, c.pidfd.get(), 0, nullptr, 0) == 0;
}

void Supervisor::perform(const Notification& n, Caller* c, int fd, const sockaddr_storage& sa,
                         socklen_t len) {
    if (config_.getfd) {
        UniqueFd sock(c && c->pidfd.valid()
                          ? static_cast<int>(syscall(SYS_pidfd_getfd, c->pidfd.get(), fd, 0))
                          : -1);
        const int err = errno;
        if (sock.valid()) {
            // The pidfd names the caller: caller() checked it was alive before on_connect's
            // ID_VALID, and a live task keeps its id.
            const int rc = connect(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len);
            const int result = rc == 0 ? 0 : errno;
            if (result == 0 || result == EINPROGRESS) {
                // Before the answer: the program may send its request the moment it has it,
                // and the proxy must know who sends it by then.
                report_client(n, sock.get());
            }
            respond(n.req.id, result);
            return;
        }
        if (err == EBADF) {
            respond(n.req.id, EBADF);
            return;
        }
        if (err == ESRCH && c && !c->fresh) {
            // The cached pidfd names a thread that exited: this caller is another one.
            callers_.erase(n.pid());
            on_connect(n, true);
            return;
        }
        // EPERM (a seccomp profile, or a process that made itself non-dumpable): fall back.
    }
    perform_addfd(n, fd, sa, len);
}

void Supervisor::perform_addfd(const Notification& n, int fd, const sockaddr_storage& sa,
                               socklen_t len) {
    int domain = sa.ss_family;
    int type = SOCK_STREAM;
    if (sa.ss_family == AF_UNIX) {
        // Without the caller's socket we learn its type from /proc/TID/net/unix.
        const auto unix_type = unix_socket_type(n.pid(), fd);
        if (!unix_type) {
            respond(n.req.id, EBADF);
            return;
        }
        type = *unix_type;
    } else if (sa.ss_family != AF_INET && sa.ss_family != AF_INET6) {
        if (!addfd_warned_) {
            std::cerr << "landjail: warning: a " << socket_family_name(sa.ss_family)
                      << " connect was refused: without pidfd_getfd the supervisor makes only "
                         "TCP and unix-socket connections for the jail\n";
            addfd_warned_ = true;
        }
        respond(n.req.id, EACCES);
        return;
    }
    const auto flags_text =
        proc_field(proc_path(n.pid(), ("fdinfo/" + std::to_string(fd)).c_str()), "flags:");
    if (!flags_text) {
        respond(n.req.id, EBADF);
        return;
    }
    const long flags = std::strtol(flags_text->c_str(), nullptr, 8);
    type |= SOCK_CLOEXEC | ((flags & O_NONBLOCK) ? SOCK_NONBLOCK : 0);
    UniqueFd sock(socket(domain, type, 0));
    if (!sock.valid()) {
        respond(n.req.id, errno);
        return;
    }
    const int rc = connect(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len);
    const int err = rc == 0 ? 0 : errno;
    if (err != 0 && err != EINPROGRESS) {
        respond(n.req.id, err);
        return;
    }
    seccomp_notif_addfd add{};
    add.id = n.req.id;
    add.flags = SECCOMP_ADDFD_FLAG_SETFD;
    add.srcfd = static_cast<std::uint32_t>(sock.get());
    add.newfd = static_cast<std::uint32_t>(fd);
    add.newfd_flags = (flags & O_CLOEXEC) ? O_CLOEXEC : 0;
    if (ioctl(config_.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
        if (errno != ENOENT) {
            respond(n.req.id, errno == EINVAL || errno == ENOTTY ? ENOSYS : errno);
        }
        return;
    }
    report_client(n, sock.get());
    // A separate answer: ADDFD_FLAG_SEND would make connect() return the fd number.
    respond(n.req.id, err);
}

void Supervisor::deny_connect(const Notification& n, const std::string& destination, int err,
                              const char* reason) {
    // Recorded before the answer: the caller may be gone after it, and an event of the jail
    // must precede the requests the program makes after this call.
    if (config_.audit) {
        proxy::AuditEvent e;
        e.event = "connect_denied";
        e.allowed = false;
        e.reason = reason;
        e.pid = n.pid();
        e.destination = destination;
        e.exe = exe_of(n.pid());
        config_.audit(std::move(e));
    }
    respond(n.req.id, err);
}

void Supervisor::on_socket(const Notification& n) {
    // The filter only notifies socket() calls it refuses (the decision is register-only).
    // Recorded before the answer, as in deny_connect().
    if (config_.audit) {
        const auto family = static_cast<long>(static_cast<int>(n.arg(0)));
        const auto type = static_cast<long>(static_cast<int>(n.arg(1)));
        const auto protocol = static_cast<long>(static_cast<int>(n.arg(2)));
        proxy::AuditEvent e;
        e.event = "socket_denied";
        e.allowed = false;
        e.reason = "socket_type_not_allowed";
        e.pid = n.pid();
        e.exe = exe_of(n.pid());
        e.destination = socket_call_text(family, type, protocol);
        config_.audit(std::move(e));
    }
    respond(n.req.id, kSocketDeniedErrno);
}

}  // namespace lj::jail
