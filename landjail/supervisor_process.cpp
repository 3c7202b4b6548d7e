// SPDX-License-Identifier: Apache-2.0
// The supervisor's answers about processes (DESIGN §3): which process is in the jail, and the
// trapped calls that act on another process than the caller: resource limits and scheduling
// (every level) and, without Landlock scopes, signals. A call whose target is given in
// registers only is CONTINUEd once the target is known to be in the jail: the kernel then
// looks up the same pid (only pid reuse by a new process outside, in between, could change
// what it names).
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "landjail/procfs.hpp"
#include "landjail/supervisor.hpp"

namespace lj::jail {
namespace {

constexpr int kIoprioWhoProcess = 1;  // IOPRIO_WHO_PROCESS (linux/ioprio.h)
constexpr int kIoprioWhoPgrp = 2;     // IOPRIO_WHO_PGRP

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
            // Our children are the command, the proxy and orphans of the jail that were
            // re-parented to us (we are their subreaper).
            return cur != proxy;
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
    bool allowed = false;
    if (nr == SYS_kill) {
        if (a0 == 0) {
            allowed = true;  // our own process group: the proxy runs in another one
        } else if (a0 == -1) {
            allowed = false;  // every process we may signal
        } else if (a0 < 0) {
            allowed = in_jail(-a0);  // a group led by a jailed process
        } else {
            allowed = in_jail(a0);
        }
    } else if (nr == SYS_pidfd_send_signal) {
        const auto pid_text = proc_field(
            proc_path(n.pid(), ("fdinfo/" + std::to_string(static_cast<int>(n.arg(0)))).c_str()),
            "Pid:");
        // Not a pidfd: the kernel answers EBADF itself.
        allowed = !pid_text || in_jail(std::atoi(pid_text->c_str()));
    } else {
        allowed = in_jail(a0);  // tkill(tid), tgkill(tgid, …), rt_(tg)sigqueueinfo(tgid, …)
    }
    if (!valid(n.req.id)) {
        return;
    }
    if (allowed) {
        respond(n.req.id, 0, true);  // register-only arguments: nothing to re-read
    } else {
        respond(n.req.id, EPERM);
    }
}

}  // namespace lj::jail
