// SPDX-License-Identifier: Apache-2.0
// The supervisor's answers about processes (DESIGN §3): which process is in the jail, and the
// trapped calls that act on another process than the caller: resource limits and scheduling
// (every level) and, without Landlock scopes, signals, process groups and SIGIO owners. Each
// goes aim_of (registers) → read_reach (/proc, then ID_VALID) → decide_process → execute. A
// call whose target is given in registers only is CONTINUEd once the target is known to be
// in the jail: the kernel then looks up the same pid (only pid reuse by a new process
// outside, in between, could change what it names). A call whose target is a descriptor
// (pidfd_send_signal) is performed by the supervisor on its own copy of the file.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "landjail/supervisor/procfs.hpp"
#include "landjail/supervisor/supervisor.hpp"

namespace lj::jail {
namespace {

constexpr unsigned kPidfdSignalProcessGroup = 4;  // PIDFD_SIGNAL_PROCESS_GROUP (Linux 6.9)

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

pid_t Supervisor::caller_group(const Notification& n) const {
    const auto stat = read_stat(n.pid());
    return stat ? stat->pgrp : -1;
}

void Supervisor::read_group(Reach& r, pid_t pgrp) const {
    r.group = pgrp;
    const std::vector<pid_t> members = pgrp > 0 ? group_members(pgrp) : std::vector<pid_t>();
    for (const pid_t pid : members) {
        if (in_jail(pid)) {
            r.inside.push_back(pid);
        } else {
            r.outside = true;
        }
    }
}

Reach Supervisor::read_reach(const Notification& n, const Aim& aim) const {
    Reach r;
    switch (aim.kind) {
        case Aim::Kind::Process:
            r.in_jail = in_jail(aim.id);
            break;
        case Aim::Kind::Group:
        case Aim::Kind::GroupSignal:
            read_group(r, aim.id != 0 ? aim.id : caller_group(n));
            break;
        case Aim::Kind::Join: {
            // setpgid(0, …) moves the caller's process.
            r.mover = aim.id != 0 ? aim.id : tgid_of(n.pid()).value_or(-1);
            const auto now = read_stat(r.mover);  // the group it is in already
            r.mover_group = now ? now->pgrp : -1;
            if (join_needs_group(aim.group, r.mover, r.mover_group)) {
                read_group(r, aim.group);
            }
            break;
        }
        case Aim::Kind::Own:
        case Aim::Kind::Everyone:
        case Aim::Kind::Unknown:
            break;
    }
    return r;
}

Answer Supervisor::on_process(const Notification& n) {
    // prlimit64(pid, …, new, …) with a new limit, sched_setaffinity/-scheduler/-param/-attr
    // (pid), setpriority(which, who), ioprio_set(which, who): the filter traps them when they
    // may name another process than the caller. Another process of the same user outside
    // the jail (the proxy, landjail) must keep its limits: RLIMIT_FSIZE or RLIMIT_NOFILE
    // would break the audit trail or the proxy. Signals, setpgid and F_SETOWN: notified
    // without Landlock scopes only.
    const Aim aim = aim_of(n.req.data);
    Reach reach;
    if (aim.kind != Aim::Kind::Unknown) {
        reach = read_reach(n, aim);
        // The reads went by thread id: confirm it named the caller all along.
        reach.gone = !io_->id_valid(n.req.id);
    }
    Held held;
    return execute(n, decide_process(aim, reach), held);
}

Answer Supervisor::signal_members(const Notification& n, const Verdict& v) {
    // Each member is pinned with a pidfd and checked again before it is signalled.
    const int sig = static_cast<int>(n.arg(1));
    bool sent = false;
    for (const pid_t pid : v.members) {
        const UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
        const auto stat = pidfd.valid() ? read_stat(pid) : std::nullopt;
        if (stat && stat->pgrp == v.group && in_jail(pid) &&
            io_->send_signal(pidfd.get(), sig, nullptr, 0) == 0) {
            sent = true;
        }
    }
    return Answer::result(sent ? 0 : EPERM);
}

Answer Supervisor::on_pidfd_signal(const Notification& n) {
    // pidfd_send_signal(fd, sig, info, flags): the descriptor may be swapped by another
    // thread between any check of ours and the kernel's own lookup, so the supervisor takes
    // the caller's file itself (pidfd_getfd), decides on it, and sends the signal through
    // it. Without pidfd_getfd nothing can be decided safely: refused.
    Held held;
    held.caller = live_caller(n);
    PidfdSignalFacts f;
    f.gone = held.caller == nullptr;
    f.getfd = config_.getfd;
    f.to_group = (static_cast<unsigned>(n.arg(3)) & kPidfdSignalProcessGroup) != 0;
    UniqueFd file;
    if (!f.gone && f.getfd) {
        f.file_errno = io_->getfd(held.caller->pidfd.get(), static_cast<int>(n.arg(0)), file);
        f.target = f.file_errno == 0 ? pidfd_target(file.get()) : 0;
    }
    if (f.target > 0) {
        f.reach = read_reach(n, Aim{f.to_group ? Aim::Kind::Group : Aim::Kind::Process, f.target});
    }
    held.file = file.get();
    const Answer a = execute(n, decide_pidfd_signal(f), held);
    after_answer_ = std::move(file);
    return a;
}

Answer Supervisor::signal_pidfd(const Notification& n, const Held& held) {
    siginfo_t info{};
    const Caller* c = held.caller;
    if (n.arg(2) != 0 &&
        (!c->mem.valid() || pread(c->mem.get(), &info, sizeof info, static_cast<off_t>(n.arg(2))) !=
                                static_cast<ssize_t>(sizeof info))) {
        return Answer::result(EFAULT);
    }
    return Answer::result(io_->send_signal(held.file, static_cast<int>(n.arg(1)),
                                           n.arg(2) != 0 ? &info : nullptr,
                                           static_cast<unsigned>(n.arg(3))));
}

}  // namespace lj::jail
