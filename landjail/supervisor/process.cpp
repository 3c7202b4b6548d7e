// SPDX-License-Identifier: Apache-2.0
// The supervisor's answers about processes (DESIGN §3): which process is in the jail, and the
// trapped calls that act on another process than the caller: resource limits and scheduling
// (every level) and, without Landlock scopes, signals, process groups and SIGIO owners. A
// call whose target is given in registers only is CONTINUEd once the target is known to be
// in the jail: the kernel then looks up the same pid (only pid reuse by a new process
// outside, in between, could change what it names). A call whose target is a descriptor
// (pidfd_send_signal) is performed by the supervisor on its own copy of the file.
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "landjail/supervisor/procfs.hpp"
#include "landjail/supervisor/supervisor.hpp"

namespace lj::jail {
namespace {

constexpr int kIoprioWhoProcess = 1;              // IOPRIO_WHO_PROCESS (linux/ioprio.h)
constexpr int kIoprioWhoPgrp = 2;                 // IOPRIO_WHO_PGRP
constexpr unsigned kPidfdSignalProcessGroup = 4;  // PIDFD_SIGNAL_PROCESS_GROUP (Linux 6.9)

/// The process a pidfd, or a /proc/PID directory (which works as one), of ours names: its
/// pid; -1 when it has exited; 0 when `fd` is neither.
pid_t pidfd_target(int fd) {
    const auto pid =
        proc_field(proc_path(getpid(), ("fdinfo/" + std::to_string(fd)).c_str()), "Pid:");
    if (pid) {
        return std::atoi(pid->c_str());  // "-1" once it has exited
    }
    const auto stat = read_stat_at(fd);
    return stat ? stat->pid : 0;
}

}  // namespace

bool Supervisor::in_jail(pid_t pid) const {
    const pid_t proxy = proxy_pid_.load();
    if (pid <= 0 || pid == config_.self || (proxy > 0 && pid == proxy)) {
        return false;
    }
    pid_t cur = pid;
    for (int depth = 0; depth < 4096; ++depth) {
        if (cur == config_.child) {
            return true;
        }
        const auto stat = read_stat(cur);
        const pid_t parent = stat ? stat->ppid : -1;
        if (parent == config_.self) {
            // Our children are the command, the proxy, orphans of the jail that were
            // re-parented to us (we are their subreaper), which started after the command,
            // and children our process had before it became landjail (a shell's background
            // jobs, when it execs landjail), which started before: those are outside.
            return cur != proxy && child_start_ != 0 && stat->start >= child_start_;
        }
        if (parent <= 1) {
            return false;
        }
        cur = parent;
    }
    return false;
}

bool Supervisor::group_in_jail(pid_t pgrp) const {
    if (pgrp <= 0) {
        return false;
    }
    const std::vector<pid_t> members = group_members(pgrp);
    if (members.empty()) {
        return false;
    }
    for (const pid_t pid : members) {
        if (!in_jail(pid)) {
            return false;
        }
    }
    return true;
}

pid_t Supervisor::caller_group(const Notification& n) const {
    const auto stat = read_stat(n.pid());
    return stat ? stat->pgrp : -1;
}

void Supervisor::on_target(const Notification& n) {
    // prlimit64(pid, …, new, …) with a new limit, sched_setaffinity/-scheduler/-param/-attr
    // (pid), setpriority(which, who), ioprio_set(which, who): the filter traps them when they
    // may name another process than the caller. Another process of the same user outside
    // the jail (the proxy, landjail) must keep its limits: RLIMIT_FSIZE or RLIMIT_NOFILE
    // would break the audit trail or the proxy.
    const int nr = n.req.data.nr;
    const auto a0 = static_cast<int>(n.arg(0));
    const auto a1 = static_cast<int>(n.arg(1));
    bool allowed = false;
    if (nr == SYS_setpriority || nr == SYS_ioprio_set) {
        const bool setprio = nr == SYS_setpriority;
        if (a0 == (setprio ? PRIO_PROCESS : kIoprioWhoProcess)) {
            allowed = a1 == 0 || in_jail(a1);
        } else if (a0 == (setprio ? PRIO_PGRP : kIoprioWhoPgrp)) {
            allowed = group_in_jail(a1 == 0 ? caller_group(n) : a1);
        }
        // PRIO_USER / IOPRIO_WHO_USER: every process of a user, outside the jail too.
    } else {
        allowed = a0 == 0 || in_jail(a0);
    }
    if (!valid(n.req.id)) {
        return;
    }
    respond(n.req.id, allowed ? 0 : EPERM, allowed);
}

void Supervisor::on_signal(const Notification& n) {
    const int nr = n.req.data.nr;
    const pid_t a0 = static_cast<int>(n.arg(0));
    const int sig = static_cast<int>(n.arg(1));
    if (nr == SYS_pidfd_send_signal) {
        on_pidfd_signal(n);
        return;
    }
    if (nr == SYS_kill && (a0 == 0 || a0 < -1)) {
        signal_group(n, a0 == 0 ? caller_group(n) : -a0, sig);
        return;
    }
    // kill(pid), tkill(tid), tgkill(tgid, …), rt_(tg)sigqueueinfo(tgid, …); kill(-1, …): every
    // process we may signal, never.
    const bool allowed = nr == SYS_kill && a0 == -1 ? false : in_jail(a0);
    if (!valid(n.req.id)) {
        return;
    }
    respond(n.req.id, allowed ? 0 : EPERM, allowed);  // register-only: nothing to re-read
}

void Supervisor::signal_group(const Notification& n, pid_t pgrp, int sig) {
    std::vector<pid_t> jailed;
    bool outside = false;
    const std::vector<pid_t> members = pgrp > 0 ? group_members(pgrp) : std::vector<pid_t>();
    for (const pid_t pid : members) {
        if (in_jail(pid)) {
            jailed.push_back(pid);
        } else {
            outside = true;
        }
    }
    if (!valid(n.req.id)) {
        return;
    }
    if (members.empty() || !outside) {
        // No such group (the kernel answers ESRCH), or only the jail's processes in it: no
        // process outside can join a group the jail made.
        respond(n.req.id, 0, true);
        return;
    }
    // A group with members outside the jail: the one the command starts in is landjail's.
    // As Landlock's signal scope would, the signal reaches the jail's members only; each is
    // pinned with a pidfd and checked again before it is signalled.
    bool sent = false;
    for (const pid_t pid : jailed) {
        const UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
        const auto stat = pidfd.valid() ? read_stat(pid) : std::nullopt;
        if (stat && stat->pgrp == pgrp && in_jail(pid) &&
            syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) == 0) {
            sent = true;
        }
    }
    respond(n.req.id, sent ? 0 : EPERM);
}

Supervisor::Caller* Supervisor::live_caller(const Notification& n) {
    Caller* c = caller(n.pid());
    if (c && !c->fresh && !current(*c, false)) {
        callers_.erase(n.pid());  // the cached thread exited: its id is another's now
        c = caller(n.pid());
    }
    // A fresh entry was opened by thread id after the notification: valid() confirms the id
    // still names the caller (a live thread keeps its id).
    return c && valid(n.req.id) ? c : nullptr;
}

void Supervisor::on_pidfd_signal(const Notification& n) {
    // pidfd_send_signal(fd, sig, info, flags): the descriptor may be swapped by another
    // thread between any check of ours and the kernel's own lookup, so the supervisor takes
    // the caller's file itself (pidfd_getfd), decides on it, and sends the signal through
    // it. Without pidfd_getfd nothing can be decided safely: refused.
    Caller* c = live_caller(n);
    if (!c) {
        return;
    }
    if (!config_.getfd) {
        respond(n.req.id, EPERM);
        return;
    }
    const UniqueFd file(
        static_cast<int>(syscall(SYS_pidfd_getfd, c->pidfd.get(), static_cast<int>(n.arg(0)), 0)));
    if (!file.valid()) {
        respond(n.req.id, errno == EBADF ? EBADF : EPERM);
        return;
    }
    const pid_t target = pidfd_target(file.get());
    const auto flags = static_cast<unsigned>(n.arg(3));
    if (target <= 0) {
        respond(n.req.id, target == 0 ? EBADF : ESRCH);
        return;
    }
    const bool allowed =
        (flags & kPidfdSignalProcessGroup) ? group_in_jail(target) : in_jail(target);
    if (!allowed) {
        respond(n.req.id, EPERM);
        return;
    }
    siginfo_t info{};
    if (n.arg(2) != 0 &&
        (!c->mem.valid() || pread(c->mem.get(), &info, sizeof info, static_cast<off_t>(n.arg(2))) !=
                                static_cast<ssize_t>(sizeof info))) {
        respond(n.req.id, EFAULT);
        return;
    }
    const long rc = syscall(SYS_pidfd_send_signal, file.get(), static_cast<int>(n.arg(1)),
                            n.arg(2) != 0 ? &info : nullptr, flags);
    respond(n.req.id, rc == 0 ? 0 : errno);
}

void Supervisor::on_setpgid(const Notification& n) {
    // setpgid(pid, pgid) with pgid != 0: joining an existing group needs every member of it
    // in the jail (a group outside would then take the jail's kill(0), F_SETOWN(-pgid) and
    // the terminal's SIGTTOU/SIGTTIN for it). Creating a group of one's own is always fine.
    const auto pid = static_cast<int>(n.arg(0));
    const auto pgid = static_cast<int>(n.arg(1));
    const auto tgid = proc_field(proc_path(n.pid(), "status"), "Tgid:");
    const pid_t target = pid != 0 ? pid : (tgid ? std::atoi(tgid->c_str()) : -1);
    const auto now = read_stat(target);  // the group it is in already: nothing changes
    const bool allowed =
        pgid == 0 || pgid == target || (now && now->pgrp == pgid) || group_in_jail(pgid);
    if (!valid(n.req.id)) {
        return;
    }
    respond(n.req.id, allowed ? 0 : EPERM, allowed);
}

void Supervisor::on_fcntl(const Notification& n) {
    // fcntl(fd, F_SETOWN, owner): SIGIO/SIGURG (or the F_SETSIG signal) of the file go to the
    // owner, a process (owner > 0) or a process group (owner < 0). F_SETOWN_EX, FIOSETOWN and
    // SIOCSPGRP carry the owner in memory: the filter refuses those.
    const auto owner = static_cast<int>(n.arg(2));
    bool allowed = owner == 0;
    if (owner > 0) {
        allowed = in_jail(owner);
    } else if (owner < 0 && owner != INT_MIN) {
        allowed = group_in_jail(-owner);
    }
    if (!valid(n.req.id)) {
        return;
    }
    respond(n.req.id, allowed ? 0 : EPERM, allowed);
}

}  // namespace lj::jail
