// SPDX-License-Identifier: Apache-2.0
// connect() in the supervisor (DESIGN §3): read the caller's address once (/proc/TID/mem),
// confirm the notification with ID_VALID, decide_connect(), then carry the verdict out: the
// connect performed on the caller's own socket (pidfd_getfd) or on a socket of ours installed
// with NOTIF_ADDFD, or a denial recorded in the audit trail before it is answered.
#include <fcntl.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "landjail/supervisor/procfs.hpp"
#include "landjail/supervisor/supervisor.hpp"
#include "proxy/base/diag.hpp"

namespace lj::jail {

Answer Supervisor::on_connect(const Notification& n) {
    Answer a;
    for (int attempt = 1; attempt <= kConnectAttempts; ++attempt) {
        Held held;
        held.may_retry = attempt < kConnectAttempts;  // so the last attempt always answers
        const ConnectFacts facts = read_connect(n, held.caller);
        a = execute(n, decide_connect(facts, rules_), held);
        if (!held.stale) {
            break;
        }
        callers_.erase(n.pid());  // the cached thread exited: its id is another's now
    }
    return a;
}

ConnectFacts Supervisor::read_connect(const Notification& n, Caller*& c) {
    ConnectFacts f;
    f.tid = n.pid();
    f.len = static_cast<int>(static_cast<std::uint32_t>(n.arg(2)));
    if (!address_length_ok(f.len)) {
        return f;  // refused on the register alone
    }
    // Opened before ID_VALID below, so that the pidfd perform() uses names the caller.
    c = caller(n.pid());
    const int open_errno = errno;
    f.read = read_address(n, c, f);
    if (f.read == ConnectFacts::Read::Unreadable) {
        f.read_errno = c ? c->mem_errno : open_errno;
    }
    // A fresh entry was opened by thread id after the notification: the id may name another
    // task by now, unless the caller is still waiting. A cached entry's task was alive before
    // the call, so while it lives it is the caller; execute() finds out if not.
    if ((f.read != ConnectFacts::Read::Done || !c || c->fresh) && !io_->id_valid(n.req.id)) {
        f.gone = true;
    }
    const int family =
        static_cast<std::size_t>(f.len) >= sizeof(sa_family_t) ? f.addr.ss_family : AF_UNSPEC;
    f.proxy_gone = f.read == ConnectFacts::Read::Done &&
                   (family == AF_INET || family == AF_INET6) && proxy_gone();
    return f;
}

ConnectFacts::Read Supervisor::read_address(const Notification& n, Caller* c, ConnectFacts& f) {
    if (f.len == 0) {
        return ConnectFacts::Read::Done;
    }
    if (!c || !c->mem.valid()) {
        return ConnectFacts::Read::Unreadable;
    }
    // Read the address exactly once; everything after uses this copy.
    const auto want = static_cast<std::size_t>(f.len);
    const auto where = static_cast<off_t>(n.arg(1));
    ssize_t got = pread(c->mem.get(), &f.addr, want, where);
    if (got != f.len) {
        // The cached file may name the memory the thread had before an execve.
        c->mem.reset(open(proc_path(n.pid(), "mem").c_str(), O_RDONLY | O_CLOEXEC));
        got = c->mem.valid() ? pread(c->mem.get(), &f.addr, want, where) : -1;
    }
    return got == f.len ? ConnectFacts::Read::Done : ConnectFacts::Read::Fault;
}

bool Supervisor::proxy_gone() const {
    pollfd p{proxy_pidfd_.get(), POLLIN, 0};
    return proxy_pidfd_.valid() && poll(&p, 1, 0) == 1;
}

Answer Supervisor::perform(const Notification& n, const Verdict& v, Held& held) {
    Caller* c = held.caller;
    if (!c) {
        return perform_addfd(n, v);  // no pidfd of the caller
    }
    UniqueFd sock;
    const int err = io_->getfd(c->pidfd.get(), static_cast<int>(n.arg(0)), sock);
    if (err == 0) {
        // The pidfd names the caller: caller() checked it was alive before read_connect's
        // ID_VALID, and a live task keeps its id.
        const int result = io_->connect(sock.get(), v.addr, v.len);
        if (result == 0 || result == EINPROGRESS) {
            // Before the answer: the program may send its request the moment it has it,
            // and the proxy must know who sends it by then.
            report_client(n, sock.get());
        }
        after_answer_ = std::move(sock);
        return Answer::result(result);
    }
    if (err == EBADF) {
        return Answer::result(EBADF);
    }
    if (err == ESRCH && !c->fresh && held.may_retry) {
        held.stale = true;  // the cached pidfd names a thread that exited: read the call again
        return Answer::none();
    }
    // EPERM (a seccomp profile, or a process that made itself non-dumpable): fall back.
    return perform_addfd(n, v);
}

int Supervisor::socket_like(const Notification& n, int family, UniqueFd& sock, long& flags) {
    const int fd = static_cast<int>(n.arg(0));
    int type = SOCK_STREAM;
    if (family == AF_UNIX) {
        // Without the caller's socket we learn its type from /proc/TID/net/unix.
        const auto unix_type = unix_socket_type(n.pid(), fd);
        if (!unix_type) {
            return EBADF;
        }
        type = *unix_type;
    } else if (family != AF_INET && family != AF_INET6) {
        if (!addfd_warned_) {
            diag::warn("a " + socket_family_name(family) +
                       " connect was refused: without pidfd_getfd the supervisor makes only TCP "
                       "and unix-socket connections for the jail");
            addfd_warned_ = true;
        }
        return EACCES;
    }
    const auto fd_status = fd_flags(n.pid(), fd);
    if (!fd_status) {
        return EBADF;
    }
    flags = *fd_status;
    sock.reset(socket(family, type | SOCK_CLOEXEC | ((flags & O_NONBLOCK) ? SOCK_NONBLOCK : 0), 0));
    return sock.valid() ? 0 : errno;
}

Answer Supervisor::perform_addfd(const Notification& n, const Verdict& v) {
    UniqueFd sock;
    long flags = 0;
    if (const int err = socket_like(n, v.addr.ss_family, sock, flags); err != 0) {
        return Answer::result(err);
    }
    const int err = io_->connect(sock.get(), v.addr, v.len);
    if (err != 0 && err != EINPROGRESS) {
        return Answer::result(err);
    }
    seccomp_notif_addfd add{};
    add.id = n.req.id;
    add.flags = SECCOMP_ADDFD_FLAG_SETFD;
    add.srcfd = static_cast<std::uint32_t>(sock.get());
    add.newfd = static_cast<std::uint32_t>(n.arg(0));
    add.newfd_flags = (flags & O_CLOEXEC) ? O_CLOEXEC : 0;
    if (const int add_err = io_->addfd(add); add_err != 0) {
        if (add_err == ENOENT) {
            return Answer::none();  // the caller is gone
        }
        return Answer::result(add_err == EINVAL || add_err == ENOTTY ? ENOSYS : add_err);
    }
    report_client(n, sock.get());
    after_answer_ = std::move(sock);
    // A separate answer: ADDFD_FLAG_SEND would make connect() return the fd number.
    return Answer::result(err);
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

Answer Supervisor::deny(const Notification& n, const Verdict& v) {
    // Recorded before the answer: the caller may be gone after it, and an event of the jail
    // must precede the requests the program makes after this call.
    if (v.event && config_.audit) {
        proxy::AuditEvent e;
        e.event = v.event;
        e.allowed = false;
        e.reason = v.reason;
        e.pid = n.pid();
        e.destination = v.destination;
        e.exe = exe_of(n.pid());
        config_.audit(std::move(e));
    }
    return Answer::result(v.error);
}

}  // namespace lj::jail
