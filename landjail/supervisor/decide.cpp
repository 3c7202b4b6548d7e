// SPDX-License-Identifier: Apache-2.0
#include "landjail/supervisor/decide.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "landjail/jail/seccomp_filter.hpp"
#include "landjail/supervisor/procfs.hpp"
#include "proxy/base/diag.hpp"

namespace lj::jail {
namespace {

constexpr int kIoprioWhoProcess = 1;  // IOPRIO_WHO_PROCESS (linux/ioprio.h)
constexpr int kIoprioWhoPgrp = 2;     // IOPRIO_WHO_PGRP
constexpr const char* kConnectDenied = "connect_denied";

bool is_inet(int family) {
    return family == AF_INET || family == AF_INET6;
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

Verdict perform(const ConnectRules& rules, const sockaddr_storage& addr, socklen_t len) {
    Verdict v = Verdict::make(rules.getfd ? Verdict::Kind::Perform : Verdict::Kind::PerformAddfd);
    v.addr = addr;
    v.len = len;
    return v;
}

Verdict decide_inet(const ConnectFacts& f, const ConnectRules& rules, socklen_t len) {
    const auto dest = canonical_inet(f.addr, len);
    if (!dest) {
        return Verdict::deny(EINVAL);
    }
    if (*dest != rules.proxy) {
        return Verdict::audited(kConnectDeniedErrno, kConnectDenied, "not_the_proxy", dest->text());
    }
    if (f.proxy_gone) {
        // Its port may be anyone's now: fail closed.
        return Verdict::audited(kConnectDeniedErrno, kConnectDenied, "proxy_gone", dest->text());
    }
    return perform(rules, f.addr, len);
}

/// A unix connect without Landlock scopes (ABI < 6).
Verdict decide_unix(const ConnectFacts& f, const ConnectRules& rules, socklen_t len) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(f.addr);
    if (len <= sizeof(sa_family_t) || un.sun_path[0] == '/') {
        return perform(rules, f.addr, len);
    }
    if (un.sun_path[0] == '\0') {
        // Without the Landlock scope an abstract socket of the jail cannot be told from one
        // outside it.
        return Verdict::audited(EPERM, kConnectDenied, "abstract_unix_socket",
                                unix_text(f.addr, len));
    }
    // The supervisor connects from its own working directory: make the path the caller's.
    const std::size_t n_path = strnlen(un.sun_path, len - sizeof(sa_family_t));
    const std::string abs = proc_path(f.tid, "cwd") + "/" + std::string(un.sun_path, n_path);
    if (abs.size() >= sizeof(un.sun_path)) {
        return Verdict::deny(ENAMETOOLONG);
    }
    sockaddr_storage copy{};
    auto& cu = reinterpret_cast<sockaddr_un&>(copy);
    cu.sun_family = AF_UNIX;
    std::memcpy(cu.sun_path, abs.c_str(), abs.size() + 1);
    return perform(rules, copy, static_cast<socklen_t>(sizeof(sa_family_t) + abs.size() + 1));
}

Verdict decide_address(const ConnectFacts& f, const ConnectRules& rules) {
    const auto len = static_cast<socklen_t>(f.len);
    const int family = len >= sizeof(sa_family_t) ? f.addr.ss_family : AF_UNSPEC;
    if (is_inet(family)) {
        return decide_inet(f, rules, len);
    }
    if (rules.landlock_abi >= 6) {
        // Not an inet address in our copy. If the program flips it to one before the kernel
        // reads it again, Landlock refuses the connect (no TCP port is allowed) and the
        // abstract-unix scope keeps it inside the jail: CONTINUE is safe here.
        return Verdict::resume();
    }
    if (family == AF_UNIX) {
        return decide_unix(f, rules, len);
    }
    return perform(rules, f.addr, len);
}

/// setpriority/ioprio_set(which, who): a process, a process group, or a user's processes.
Aim aim_of_priority(bool setprio, int which, int who) {
    if (which == (setprio ? PRIO_PROCESS : kIoprioWhoProcess)) {
        return who == 0 ? Aim{Aim::Kind::Own} : Aim{Aim::Kind::Process, who};
    }
    if (which == (setprio ? PRIO_PGRP : kIoprioWhoPgrp)) {
        return Aim{Aim::Kind::Group, who};
    }
    return Aim{Aim::Kind::Everyone};  // PRIO_USER / IOPRIO_WHO_USER: outside the jail too
}

/// kill(pid, sig): a process, the caller's group (0), every process (-1), group -pid.
Aim aim_of_kill(int pid) {
    if (pid == 0 || pid < -1) {
        // -INT_MIN wraps to INT_MIN, a group with no members: the kernel answers ESRCH.
        return Aim{Aim::Kind::GroupSignal, static_cast<pid_t>(-static_cast<long>(pid))};
    }
    return pid == -1 ? Aim{Aim::Kind::Everyone} : Aim{Aim::Kind::Process, pid};
}

/// fcntl(fd, F_SETOWN, owner): SIGIO/SIGURG go to a process (> 0) or a group (< 0).
Aim aim_of_owner(int owner) {
    if (owner == 0) {
        return Aim{Aim::Kind::Own};
    }
    if (owner == INT_MIN) {
        return Aim{Aim::Kind::Everyone};  // no group -INT_MIN: refused as before
    }
    return owner > 0 ? Aim{Aim::Kind::Process, owner} : Aim{Aim::Kind::Group, -owner};
}

bool group_jailed(const Reach& r) {
    return !r.inside.empty() && !r.outside;
}

}  // namespace

Verdict Verdict::make(Kind kind) {
    Verdict v;
    v.kind = kind;
    return v;
}

Verdict Verdict::deny(int err) {
    Verdict v = make(Kind::Deny);
    v.error = err;
    return v;
}

Verdict Verdict::audited(int err, const char* event, const char* reason, std::string dest) {
    Verdict v = deny(err);
    v.event = event;
    v.reason = reason;
    v.destination = std::move(dest);
    return v;
}

const char* verdict_name(Verdict::Kind kind) {
    switch (kind) {
        case Verdict::Kind::Gone:
            return "Gone";
        case Verdict::Kind::Continue:
            return "Continue";
        case Verdict::Kind::Deny:
            return "Deny";
        case Verdict::Kind::Perform:
            return "Perform";
        case Verdict::Kind::PerformAddfd:
            return "PerformAddfd";
        case Verdict::Kind::SignalGroup:
            return "SignalGroup";
        case Verdict::Kind::SignalPidfd:
            return "SignalPidfd";
    }
    return "?";
}

bool address_length_ok(long len) {
    return len >= 0 && static_cast<unsigned long>(len) <= sizeof(sockaddr_storage);
}

Verdict decide_connect(const ConnectFacts& f, const ConnectRules& rules) {
    if (!address_length_ok(f.len)) {
        return Verdict::deny(EINVAL);
    }
    if (f.gone) {
        return Verdict::gone();
    }
    if (f.read == ConnectFacts::Read::Unreadable) {
        return Verdict::audited(EPERM, kConnectDenied, "address_unreadable",
                                "(unreadable: " + diag::errno_text(f.read_errno) + ")");
    }
    if (f.read == ConnectFacts::Read::Fault) {
        return Verdict::deny(EFAULT);
    }
    Verdict v = decide_address(f, rules);
    v.from_memory = f.len > 0 && v.kind != Verdict::Kind::Continue;
    return v;
}

Verdict decide_socket(long family, long type, long protocol) {
    return Verdict::audited(kSocketDeniedErrno, "socket_denied", "socket_type_not_allowed",
                            socket_call_text(family, type, protocol));
}

Aim aim_of(const seccomp_data& call) {
    const auto a0 = static_cast<int>(call.args[0]);
    const auto a1 = static_cast<int>(call.args[1]);
    const int nr = call.nr;
    switch (nr) {
        case SYS_kill:
            return aim_of_kill(a0);
        case SYS_tkill:              // tkill(tid, …)
        case SYS_tgkill:             // tgkill(tgid, tid, …)
        case SYS_rt_sigqueueinfo:    // (tgid, …)
        case SYS_rt_tgsigqueueinfo:  // (tgid, tid, …)
            return Aim{Aim::Kind::Process, a0};
        case SYS_setpgid:  // setpgid(pid, pgid); the filter notifies pgid != 0 only
            return a1 == 0 ? Aim{Aim::Kind::Own} : Aim{Aim::Kind::Join, a0, a1};
        case SYS_fcntl:  // the filter notifies F_SETOWN only
            return a1 == F_SETOWN ? aim_of_owner(static_cast<int>(call.args[2])) : Aim{};
        case SYS_setpriority:
        case SYS_ioprio_set:
            return aim_of_priority(nr == SYS_setpriority, a0, a1);
        case SYS_prlimit64:  // (pid, resource, new, old): notified with a new limit only
        case SYS_sched_setaffinity:
        case SYS_sched_setscheduler:
        case SYS_sched_setparam:
        case SYS_sched_setattr:
            return a0 == 0 ? Aim{Aim::Kind::Own} : Aim{Aim::Kind::Process, a0};
        default:
            return Aim{};
    }
}

bool join_needs_group(pid_t pgid, pid_t mover, pid_t mover_group) {
    return pgid != 0 && pgid != mover && !(mover_group > 0 && mover_group == pgid);
}

Verdict decide_process(const Aim& aim, const Reach& r) {
    if (aim.kind == Aim::Kind::Unknown) {
        return Verdict::deny(ENOSYS);  // the filter notifies nothing else
    }
    if (r.gone) {
        return Verdict::gone();
    }
    bool allowed = false;
    switch (aim.kind) {
        case Aim::Kind::Own:
            allowed = true;
            break;
        case Aim::Kind::Process:
            allowed = r.in_jail;
            break;
        case Aim::Kind::Group:
            allowed = group_jailed(r);
            break;
        case Aim::Kind::Join:
            allowed = !join_needs_group(aim.group, r.mover, r.mover_group) || group_jailed(r);
            break;
        case Aim::Kind::GroupSignal:
            // No such group (the kernel answers ESRCH), or only the jail's processes in it:
            // no process outside can join a group the jail made.
            allowed = !r.outside;
            break;
        case Aim::Kind::Everyone:
        case Aim::Kind::Unknown:
            break;
    }
    if (allowed) {
        return Verdict::resume();  // register-only: nothing to read again
    }
    if (aim.kind != Aim::Kind::GroupSignal) {
        return Verdict::deny(EPERM);
    }
    // A group with members outside the jail (the one the command starts in is landjail's):
    // the signal reaches the jail's members only.
    Verdict v = Verdict::make(Verdict::Kind::SignalGroup);
    v.group = r.group;
    v.members = r.inside;
    return v;
}

Verdict decide_pidfd_signal(const PidfdSignalFacts& f) {
    if (f.gone) {
        return Verdict::gone();
    }
    if (!f.getfd) {
        return Verdict::deny(EPERM);  // nothing can be decided safely without our own copy
    }
    if (f.file_errno != 0) {
        return Verdict::deny(f.file_errno == EBADF ? EBADF : EPERM);
    }
    if (f.target <= 0) {
        return Verdict::deny(f.target == 0 ? EBADF : ESRCH);
    }
    const bool allowed = f.to_group ? group_jailed(f.reach) : f.reach.in_jail;
    return allowed ? Verdict::make(Verdict::Kind::SignalPidfd) : Verdict::deny(EPERM);
}

}  // namespace lj::jail
