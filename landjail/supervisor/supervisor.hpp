// SPDX-License-Identifier: Apache-2.0
// The supervisor (DESIGN §3): answers the seccomp user notifications of the jailed tree.
// Every notification goes one way (sandbox2's supervisor): read what the decision needs,
// once (connect: the address from /proc/TID/mem, then ID_VALID; process calls: /proc, then
// ID_VALID) → a pure decide function (decide.hpp) → one executor → one answer, sent in one
// place through NotifyIo (notify_io.hpp). connect(): only the proxy's exact address passes;
// the supervisor performs the connect itself on the child's own socket (pidfd_getfd), or on
// a socket of its own that it installs with ADDFD, and returns the result. An inet connect is
// never CONTINUEd; once our proxy has exited, a connect to its address is refused. Calls that
// act on another process (process.cpp): resource limits and scheduling, and without Landlock
// scopes signals, process groups and SIGIO owners, are allowed only inside the jail.
#pragma once

#include <linux/seccomp.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "landjail/supervisor/decide.hpp"
#include "landjail/supervisor/inet.hpp"
#include "landjail/supervisor/notify_io.hpp"
#include "policy/result.hpp"
#include "proxy/audit/event.hpp"
#include "proxy/base/fd.hpp"

namespace lj::jail {

struct SupervisorConfig {
    int listener = -1;
    InetAddr proxy;        ///< the only destination a jailed connect() may reach
    int landlock_abi = 0;  ///< >= 6: Landlock scopes hold (unix connects may CONTINUE)
    bool getfd = true;     ///< pidfd_getfd allowed; else ADDFD for every connect
    /// Where connect_denied/socket_denied events go (the proxy's stream, or an Auditor of
    /// our own); empty: not audited. Called on the supervisor thread; must not block.
    std::function<void(proxy::AuditEvent&&)> audit;
    /// Called after each connect performed for the jail: who asked, and the client port the
    /// connection has (the proxy attributes its requests with it). Must not block.
    std::function<void(pid_t pid, std::uint16_t port)> client;
    pid_t self = 0;       ///< the supervisor (outside the jail)
    pid_t child = 0;      ///< the jailed command
    pid_t proxy_pid = 0;  ///< our landjail-proxy child (outside the jail), 0 when none
    /// A pidfd of that proxy (-1: none, e.g. --proxy-addr); the Supervisor keeps a copy. Once
    /// the proxy has exited, connects to its address are refused (fail closed): its port may
    /// now be anyone's.
    int proxy_pidfd = -1;
};

class Supervisor {
  public:
    /// Answers on config.listener (KernelNotifyIo).
    explicit Supervisor(SupervisorConfig config);
    /// The same on another NotifyIo (a unit test's fake); config.listener is not used.
    Supervisor(SupervisorConfig config, std::unique_ptr<NotifyIo> io);

    /// Receives one notification (the listener must be readable) and answers it, exactly
    /// once (nothing when the caller is gone). Returns false when the listener is finished
    /// (no process uses the filter any more).
    bool handle_one();

    /// Thread-safe: the main thread reaps the proxy, the supervisor thread reads it.
    void set_proxy_pid(pid_t pid) { proxy_pid_.store(pid); }

    /// Asks the kernel to switch directly between a trapped thread and the supervisor
    /// (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6): one CPU, no cross-CPU wake-up.
    /// Meant for a supervisor that blocks in handle_one(). False when unsupported.
    bool use_sync_wakeup() const { return io_->set_sync_wakeup(); }

  private:
    struct Notification {
        seccomp_notif req{};
        pid_t pid() const { return static_cast<pid_t>(req.pid); }
        std::uint64_t arg(int i) const { return req.data.args[i]; }
    };
    /// A thread that made a trapped call: its pidfd and /proc/TID/mem, opened once.
    struct Caller {
        UniqueFd pidfd;
        UniqueFd mem;
        int mem_errno = 0;
        bool fresh = false;  ///< opened for this notification (no need to check it is current)
    };
    /// What the executor holds for one attempt at a notification.
    struct Held {
        Caller* caller = nullptr;  ///< the caller, when opened
        int file = -1;             ///< SignalPidfd: our copy of the caller's pidfd
        bool may_retry = false;    ///< a cached caller found gone may be read again (stale)
        bool stale = false;        ///< out: it was; nothing was answered
    };
    static constexpr std::size_t kMaxCallers = 128;  ///< two fds each
    /// A connect is read at most twice: once more when its cached caller was another thread.
    static constexpr int kConnectAttempts = 2;

    // supervisor.cpp: the loop, the callers, the one executor and the one answer.
    Answer handle(const Notification& n);
    /// The only place that answers the kernel (NOTIF_SEND).
    void answer(std::uint64_t id, const Answer& a);
    /// Carries out `v` for notification `n` and returns what to answer; sets held.stale (and
    /// answers nothing) only when held.may_retry.
    Answer execute(const Notification& n, const Verdict& v, Held& held);
    Caller* caller(pid_t tid);  ///< cached or opened; nullptr when the thread is gone
    /// caller(), confirmed to name the caller still; nullptr when it is gone.
    Caller* live_caller(const Notification& n);
    bool alive(const Caller& c);  ///< the cached thread has not exited (pidfd_send_signal 0)

    // connect.cpp: read once, decide_connect, perform.
    Answer on_connect(const Notification& n);
    /// The facts of a connect; opens the caller into `c` when the length is readable.
    ConnectFacts read_connect(const Notification& n, Caller*& c);
    /// Reads the caller's address into facts.addr, once.
    ConnectFacts::Read read_address(const Notification& n, Caller* c, ConnectFacts& facts);
    Answer perform(const Notification& n, const Verdict& v, Held& held);
    Answer perform_addfd(const Notification& n, const Verdict& v);
    /// A socket of ours like the caller's descriptor arg(0) (unix type from /proc, its
    /// O_NONBLOCK) in `sock`, its status flags in `flags`; 0 or the errno to answer (EACCES
    /// for a family ADDFD cannot stand in for).
    int socket_like(const Notification& n, int family, UniqueFd& sock, long& flags);
    Answer deny(const Notification& n, const Verdict& v);       ///< audited before the answer
    void report_client(const Notification& n, int sock) const;  ///< config_.client
    bool proxy_gone() const;  ///< our proxy has exited (its pidfd is readable)

    // process.cpp: calls that act on other processes.
    Answer on_process(const Notification& n);
    Answer on_pidfd_signal(const Notification& n);
    /// What /proc says about the processes `aim` names (not ID_VALID: the caller's to do).
    Reach read_reach(const Notification& n, const Aim& aim) const;
    void read_group(Reach& r, pid_t pgrp) const;
    Answer signal_members(const Notification& n, const Verdict& v);
    Answer signal_pidfd(const Notification& n, const Held& held);
    bool in_jail(pid_t pid) const;
    pid_t caller_group(const Notification& n) const;  ///< -1 when the caller is gone

    SupervisorConfig config_;
    ConnectRules rules_;
    std::unique_ptr<NotifyIo> io_;
    std::atomic<pid_t> proxy_pid_{0};     ///< set by the main thread if the proxy dies
    UniqueFd proxy_pidfd_;                ///< our copy of config.proxy_pidfd
    unsigned long long child_start_ = 0;  ///< when the command started (ProcStat::start)
    std::unordered_map<pid_t, Caller> callers_;
    /// A descriptor the executor is done with (our copy of the caller's socket or pidfd, or
    /// the socket ADDFD installed), closed only after the answer: the caller, still blocked
    /// in its call, need not wait for our close(2) (about 1.3 µs per connect here).
    UniqueFd after_answer_;
    bool addfd_warned_ = false;
};

}  // namespace lj::jail
