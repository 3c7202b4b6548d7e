// SPDX-License-Identifier: Apache-2.0
// The supervisor's loop: receive, dispatch, execute the verdict, answer once. The callers'
// cache (a pidfd and /proc/TID/mem per trapping thread) lives here too.
#include "landjail/supervisor/supervisor.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "landjail/supervisor/procfs.hpp"

namespace lj::jail {
namespace {

constexpr unsigned kPidfdThread = O_EXCL;  // PIDFD_THREAD (Linux 6.9)

/// A pidfd for the thread that made the call, so that pidfd_getfd sees its file table.
UniqueFd pidfd_for(pid_t tid) {
    long fd = syscall(SYS_pidfd_open, tid, kPidfdThread);
    if (fd < 0 && errno == EINVAL) {  // before 6.9: only thread-group leaders
        const auto tgid = tgid_of(tid);
        fd = tgid ? syscall(SYS_pidfd_open, *tgid, 0) : -1;
    }
    return UniqueFd(static_cast<int>(fd));
}

}  // namespace

Supervisor::Supervisor(SupervisorConfig config)
    : Supervisor(config, std::make_unique<KernelNotifyIo>(config.listener)) {}

Supervisor::Supervisor(SupervisorConfig config, std::unique_ptr<NotifyIo> io)
    : config_(std::move(config)),
      rules_{config_.proxy, config_.landlock_abi, config_.getfd},
      io_(std::move(io)),
      proxy_pid_(config_.proxy_pid),
      proxy_pidfd_(config_.proxy_pidfd >= 0 ? fcntl(config_.proxy_pidfd, F_DUPFD_CLOEXEC, 0) : -1) {
    // The command is our child and has not been reaped yet: its start time is readable.
    if (const auto stat = read_stat(config_.child)) {
        child_start_ = stat->start;
    }
}

bool Supervisor::handle_one() {
    Notification n;
    switch (io_->recv(n.req)) {
        case NotifyIo::Received::Notification:
            answer(n.req.id, handle(n));
            after_answer_.reset();
            return true;
        case NotifyIo::Received::Nothing:
            return true;
        case NotifyIo::Received::Finished:
            break;
    }
    return false;
}

Answer Supervisor::handle(const Notification& n) {
    switch (n.req.data.nr) {
        case SYS_connect:
            return on_connect(n);
        case SYS_socket: {
            // The filter only notifies socket() calls it refuses (register-only).
            Held held;
            return execute(n,
                           decide_socket(static_cast<int>(n.arg(0)), static_cast<int>(n.arg(1)),
                                         static_cast<int>(n.arg(2))),
                           held);
        }
        case SYS_pidfd_send_signal:
            return on_pidfd_signal(n);
        default:
            return on_process(n);  // or ENOSYS: the filter notifies nothing else
    }
}

void Supervisor::answer(std::uint64_t id, const Answer& a) {
    if (a.kind == Answer::Kind::None) {
        return;
    }
    seccomp_notif_resp resp{};
    resp.id = id;
    resp.error = a.error ? -a.error : 0;
    resp.val = 0;
    resp.flags = a.kind == Answer::Kind::Continue ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
    io_->send(resp);
}

Answer Supervisor::execute(const Notification& n, const Verdict& v, Held& held) {
    // A cached caller's memory may have been another thread's (its id reused): confirm it
    // before acting on what was read there. Perform finds out for free (pidfd_getfd: ESRCH).
    if (held.may_retry && held.caller && !held.caller->fresh && v.from_memory &&
        v.kind != Verdict::Kind::Perform && !alive(*held.caller)) {
        held.stale = true;
        return Answer::none();
    }
    switch (v.kind) {
        case Verdict::Kind::Gone:
            return Answer::none();
        case Verdict::Kind::Continue:
            return Answer::proceed();
        case Verdict::Kind::Deny:
            return deny(n, v);
        case Verdict::Kind::Perform:
            return perform(n, v, held);
        case Verdict::Kind::PerformAddfd:
            return perform_addfd(n, v);
        case Verdict::Kind::SignalGroup:
            return signal_members(n, v);
        case Verdict::Kind::SignalPidfd:
            return signal_pidfd(n, held);
    }
    return Answer::result(ENOSYS);
}

Supervisor::Caller* Supervisor::caller(pid_t tid) {
    // A cached entry may name a thread that exited, its id now another thread's: it is
    // checked where that matters (execute()).
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

Supervisor::Caller* Supervisor::live_caller(const Notification& n) {
    Caller* c = caller(n.pid());
    if (c && !c->fresh && !alive(*c)) {
        callers_.erase(n.pid());  // the cached thread exited: its id is another's now
        c = caller(n.pid());
    }
    // A fresh entry was opened by thread id after the notification: ID_VALID confirms the id
    // still names the caller (a live thread keeps its id).
    return c && io_->id_valid(n.req.id) ? c : nullptr;
}

bool Supervisor::alive(const Caller& c) {
    return io_->send_signal(c.pidfd.get(), 0, nullptr, 0) == 0;
}

}  // namespace lj::jail
