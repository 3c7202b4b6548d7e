// SPDX-License-Identifier: Apache-2.0
// The supervisor (DESIGN §3): answers the seccomp user notifications of the jailed tree.
// connect(): the address is read once from /proc/TID/mem, the notification is checked with
// ID_VALID, and only the proxy's exact address passes; the supervisor then performs the
// connect itself on the child's own socket (pidfd_getfd), or on a socket of its own that it
// installs with ADDFD, and returns the result. An inet connect is never CONTINUEd; once our
// proxy has exited, a connect to its address is refused. Calls that act on another process
// (supervisor_process.cpp): resource limits and scheduling, and without Landlock scopes
// signals, process groups and SIGIO owners, are allowed only inside the jail.
#pragma once

#include <linux/seccomp.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "landjail/supervisor/inet.hpp"
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
    explicit Supervisor(SupervisorConfig config);

    /// Receives one notification (the listener must be readable) and answers it. Returns
    /// false when the listener is finished (no process uses the filter any more).
    bool handle_one();

    /// Thread-safe: the main thread reaps the proxy, the supervisor thread reads it.
    void set_proxy_pid(pid_t pid) { proxy_pid_.store(pid); }

    /// Asks the kernel to switch directly between a trapped thread and the supervisor
    /// (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6): one CPU, no cross-CPU wake-up.
    /// Meant for a supervisor that blocks in handle_one(). False when unsupported.
    bool use_sync_wakeup() const;

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
    static constexpr std::size_t kMaxCallers = 128;  ///< two fds each
    Caller* caller(pid_t tid);  ///< cached or opened; nullptr when the thread is gone
    void on_connect(const Notification& n, bool retried = false);
    /// Reads the caller's address into `sa`, once; false when it answered the call instead.
    bool read_address(const Notification& n, Caller* c, int len, sockaddr_storage& sa);
    /// A unix connect without Landlock scopes (ABI < 6): abstract names are refused,
    /// relative paths made the caller's.
    void connect_unix(const Notification& n, Caller* c, int fd, const sockaddr_storage& sa,
                      socklen_t len);
    void on_socket(const Notification& n);
    void on_signal(const Notification& n);
    /// kill(0 or -pgrp): CONTINUE when every member is in the jail, else the jail's members
    /// only are signalled by the supervisor.
    void signal_group(const Notification& n, pid_t pgrp, int sig);
    void on_pidfd_signal(const Notification& n);  ///< performed on our copy of the pidfd
    void on_setpgid(const Notification& n);       ///< only into groups of the jail
    void on_fcntl(const Notification& n);         ///< F_SETOWN: only to the jail
    /// caller(), checked to name the caller still; nullptr when it is gone (nothing to answer).
    Caller* live_caller(const Notification& n);
    /// prlimit64, sched_set*, setpriority, ioprio_set: allowed on the jail's own processes.
    void on_target(const Notification& n);
    void perform(const Notification& n, Caller* c, int fd, const sockaddr_storage& sa,
                 socklen_t len);
    bool current(Caller& c, bool allowed);  ///< a cached entry still names a live thread
    void report_client(const Notification& n, int sock) const;  ///< config_.client
    void perform_addfd(const Notification& n, int fd, const sockaddr_storage& sa, socklen_t len);
    bool in_jail(pid_t pid) const;
    /// The process group has members and all of them are in the jail.
    bool group_in_jail(pid_t pgrp) const;
    pid_t caller_group(const Notification& n) const;  ///< -1 when the caller is gone
    void deny_connect(const Notification& n, const std::string& destination, int err,
                      const char* reason);
    void respond(std::uint64_t id, int err, bool continue_call = false) const;
    bool valid(std::uint64_t id) const;
    bool proxy_gone() const;  ///< our proxy has exited (its pidfd is readable)

    SupervisorConfig config_;
    std::atomic<pid_t> proxy_pid_{0};     ///< set by the main thread if the proxy dies
    UniqueFd proxy_pidfd_;                ///< our copy of config.proxy_pidfd
    unsigned long long child_start_ = 0;  ///< when the command started (ProcStat::start)
    std::unordered_map<pid_t, Caller> callers_;
    bool addfd_warned_ = false;
};

}  // namespace lj::jail
