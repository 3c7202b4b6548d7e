// SPDX-License-Identifier: Apache-2.0
// The supervisor's decisions as pure functions (sandbox2's endpoint filter). Each trapped call
// is read once into facts — its registers, the address copied from the caller's memory, what
// /proc said about the processes it names, ID_VALID — and a decide function turns the facts
// into a Verdict without any I/O, so every verdict is table-tested (tests/unit/
// test_supervisor_decide.cpp). The Supervisor executes a verdict in one place and sends one
// Answer per notification (supervisor.hpp).
//
// What a verdict may rest on (STYLE fact 8): Continue is never given for a decision that
// depends on the caller's memory, since the kernel would read it again; an inet connect is
// performed by the supervisor on its own copy of the address, or denied.
#pragma once

#include <linux/seccomp.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "landjail/supervisor/inet.hpp"

namespace lj::jail {

/// The one answer the supervisor sends for a notification (SECCOMP_IOCTL_NOTIF_SEND).
struct Answer {
    enum class Kind {
        Result,    ///< the call returns 0 or fails with `error`, without running in the kernel
        Continue,  ///< the kernel runs the call as the program made it (FLAG_CONTINUE)
        None,      ///< nothing is sent: the caller is gone
    };
    Kind kind = Kind::None;
    int error = 0;

    static Answer result(int err) { return {Kind::Result, err}; }
    static Answer proceed() { return {Kind::Continue, 0}; }
    static Answer none() { return {Kind::None, 0}; }
    bool operator==(const Answer&) const = default;
};

/// What to do with one trapped call.
struct Verdict {
    enum class Kind {
        Gone,          ///< the caller is no longer waiting (ID_VALID failed): answer nothing
        Continue,      ///< the kernel runs the call (decided on registers, or Landlock holds)
        Deny,          ///< fail with `error`; audited as `event` when that is set
        Perform,       ///< connect for the caller on its own socket (pidfd_getfd; where that is
                       ///< refused at run time, as PerformAddfd)
        PerformAddfd,  ///< connect a socket of ours and install it with NOTIF_ADDFD
        SignalGroup,   ///< signal `members` only: the jail's part of a group with outsiders
        SignalPidfd,   ///< send the signal through our copy of the caller's pidfd
    };
    Kind kind = Kind::Deny;
    int error = 0;                 ///< Deny: the errno the call fails with
    const char* event = nullptr;   ///< Deny: "connect_denied" or "socket_denied"; null: none
    const char* reason = nullptr;  ///< with `event`: why (DESIGN §6 reasons)
    std::string destination;       ///< with `event`: what the call tried to reach
    sockaddr_storage addr{};       ///< Perform*: our copy of the destination (a relative unix
    socklen_t len = 0;             ///< path made the caller's), and its length
    /// Decided on bytes read from the caller's memory: a cached caller must be confirmed to be
    /// the thread that trapped before the verdict is executed (Perform confirms it for free).
    bool from_memory = false;
    pid_t group = 0;             ///< SignalGroup: the process group
    std::vector<pid_t> members;  ///< SignalGroup: its members in the jail (checked again)

    static Verdict gone() { return make(Kind::Gone); }
    static Verdict resume() { return make(Kind::Continue); }
    static Verdict deny(int err);
    static Verdict audited(int err, const char* event, const char* reason, std::string dest);
    static Verdict make(Kind kind);
};

/// "Perform", "Deny", … (for test messages and debugging).
const char* verdict_name(Verdict::Kind kind);

// ---- connect(fd, addr, len) ----------------------------------------------------------------

/// A connect's addrlen the supervisor can read: 0 to sizeof(sockaddr_storage) bytes.
bool address_length_ok(long len);

/// What a trapped connect gave the supervisor, read once.
struct ConnectFacts {
    enum class Read {
        Done,        ///< `addr` holds our copy of the caller's `len` bytes (none when len is 0)
        Unreadable,  ///< the caller's memory could not be opened (`read_errno`)
        Fault,       ///< the address is not readable there (EFAULT)
    };
    pid_t tid = 0;  ///< the caller (its working directory resolves a relative unix path)
    long len = 0;   ///< the addrlen register as the kernel reads it (an int)
    Read read = Read::Done;
    int read_errno = 0;
    sockaddr_storage addr{};
    bool gone = false;        ///< ID_VALID failed after the read
    bool proxy_gone = false;  ///< our proxy has exited (its pidfd is readable)
};

/// What the jail allows a connect to reach, fixed for the jail's lifetime.
struct ConnectRules {
    InetAddr proxy;        ///< the only inet destination
    int landlock_abi = 0;  ///< >= 6: Landlock scopes hold, a non-inet connect may CONTINUE
    bool getfd = true;     ///< pidfd_getfd is allowed (else every connect is ADDFD)
};

/// Inet: the proxy's exact address (v4-mapped canonical) is performed unless the proxy is
/// gone; anything else is denied and audited; a short inet address is EINVAL. Other families:
/// CONTINUE with Landlock scopes; without them an abstract unix name is denied and audited,
/// a relative unix path is made /proc/TID/cwd/PATH (ENAMETOOLONG when it does not fit), and
/// the rest is performed. A bad length is EINVAL, unreadable memory EPERM (audited), an
/// unreadable address EFAULT, a caller that is gone Gone.
Verdict decide_connect(const ConnectFacts& facts, const ConnectRules& rules);

/// socket(family, type, protocol): the filter notifies only the calls it refuses; denied
/// with kSocketDeniedErrno and audited as socket_denied.
Verdict decide_socket(long family, long type, long protocol);

// ---- calls that act on other processes -----------------------------------------------------

/// Whom a trapped process call names, from its registers alone.
struct Aim {
    enum class Kind {
        Unknown,      ///< not a call the filter notifies: ENOSYS
        Own,          ///< the caller only (pid, who or owner 0, a new group): allowed
        Process,      ///< process or thread `id`: allowed when it is in the jail
        Group,        ///< group `id` (0: the caller's): allowed when it has members, all jailed
        GroupSignal,  ///< kill(0 / -pgrp) to group `id` (0: the caller's): see decide_process
        Join,         ///< setpgid: process `id` (0: the caller) into group `group`
        Everyone,     ///< outside processes too (kill(-1), PRIO_USER, owner INT_MIN): refused
    };
    Kind kind = Kind::Unknown;
    pid_t id = 0;
    pid_t group = 0;
};

/// kill, tkill, tgkill, rt_(tg)sigqueueinfo, setpgid, fcntl(F_SETOWN), prlimit64,
/// sched_setaffinity/-scheduler/-param/-attr, setpriority, ioprio_set (`call.nr` and
/// `call.args`). pidfd_send_signal is not here: its target is a descriptor.
Aim aim_of(const seccomp_data& call);

/// What /proc said about the processes an Aim names, read once, and ID_VALID after it.
struct Reach {
    bool gone = false;          ///< ID_VALID failed after the reads
    bool in_jail = false;       ///< Process: the target is in the jail
    pid_t group = 0;            ///< the group looked at (the caller's for 0)
    std::vector<pid_t> inside;  ///< its members in the jail
    bool outside = false;       ///< it has members outside the jail
    pid_t mover = -1;           ///< Join: the process that changes group (-1: unknown)
    pid_t mover_group = -1;     ///< Join: the group it is in now (-1: unknown)
};

/// setpgid(mover, pgid) joins a group other than a new one of its own or the one it is in:
/// only then do the group's members decide.
bool join_needs_group(pid_t pgid, pid_t mover, pid_t mover_group);

/// Continue when the aim stays inside the jail, else Deny(EPERM); a kill to a group with
/// members outside becomes SignalGroup (the jail's members only, as Landlock's signal scope
/// would); a kill to a group that is empty or all jailed continues (the kernel answers).
Verdict decide_process(const Aim& aim, const Reach& reach);

/// What pidfd_send_signal(fd, sig, info, flags) gave the supervisor: our copy of the file.
struct PidfdSignalFacts {
    bool gone = false;      ///< ID_VALID failed
    bool getfd = true;      ///< pidfd_getfd is allowed
    int file_errno = 0;     ///< pidfd_getfd failed with this (0: we hold the file)
    pid_t target = 0;       ///< the process the file names: 0 not a pidfd, -1 it has exited
    bool to_group = false;  ///< PIDFD_SIGNAL_PROCESS_GROUP
    Reach reach;            ///< of the target (as a process, or as a group)
};

/// SignalPidfd when the target (or every member of its group) is in the jail; EPERM without
/// pidfd_getfd or outside the jail, EBADF for a file that is no pidfd, ESRCH once it exited.
Verdict decide_pidfd_signal(const PidfdSignalFacts& facts);

}  // namespace lj::jail
