// SPDX-License-Identifier: Apache-2.0
// Every /proc read of the supervisor, in one place: a process's executable, its thread-group
// id, fields of its status-like files, its parent, process group, session and start time, the
// members of a process group, the flags of one of its descriptors (fdinfo), the type of one of
// its unix sockets (net/unix), and the process a pidfd of ours names. Plain read(2) where it
// is on the path of every connect; nothing here caches (a pid may name another process a
// moment later: callers that must be sure pin the process with a pidfd first).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace lj::jail {

/// The path of a /proc file of one thread, e.g. proc_path(42, "mem").
std::string proc_path(pid_t pid, const char* leaf);

/// /proc/PID/exe, or "" when the process is gone or unreadable.
std::string exe_of(pid_t pid);

/// A field ("Tgid:", "Pid:", "flags:") of a /proc status-like file, as text (leading blanks
/// removed); nullopt when the file or the field is missing.
std::optional<std::string> proc_field(const std::string& path, const std::string& key);

/// The ids in /proc/PID/stat.
struct ProcStat {
    pid_t pid = 0;
    pid_t ppid = 0;
    pid_t pgrp = 0;
    pid_t session = 0;
    unsigned long long start = 0;  ///< start time after boot, in clock ticks
};

/// /proc/PID/stat of a process (or thread); nullopt when it is gone.
std::optional<ProcStat> read_stat(pid_t pid);

/// The same through a descriptor of a /proc/PID directory (which pins that process: a pid
/// reused since then does not answer for it); nullopt when the process is gone or `dirfd`
/// is not such a directory.
std::optional<ProcStat> read_stat_at(int dirfd);

/// Every process whose process group is `pgrp` (a scan of /proc; threads are not listed).
std::vector<pid_t> group_members(pid_t pgrp);

/// The thread-group id (process id) of thread `tid`; nullopt when it is gone.
std::optional<pid_t> tgid_of(pid_t tid);

/// The file status flags (O_NONBLOCK, O_CLOEXEC, …) of descriptor `fd` of `pid`, from
/// /proc/PID/fdinfo/FD; nullopt when there is no such descriptor.
std::optional<long> fd_flags(pid_t pid, int fd);

/// The type (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET) of the unix socket `fd` of thread
/// `tid`, found by its inode in /proc/TID/net/unix; nullopt when `fd` is not a unix socket.
std::optional<int> unix_socket_type(pid_t tid, int fd);

/// The process that `fd`, a pidfd or a /proc/PID directory (which works as one) of this
/// process, names: its pid; -1 when it has exited; 0 when `fd` is neither.
pid_t pidfd_target(int fd);

}  // namespace lj::jail
