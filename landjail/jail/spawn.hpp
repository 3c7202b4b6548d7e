// SPDX-License-Identifier: Apache-2.0
// Starting the jailed command (DESIGN §2, §3): PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG,
// Landlock, the seccomp filter, then exec. The child shares our file table (CLONE_FILES)
// until exec, so the seccomp listener it creates lands in our table without any trapped
// call; execve() then gives the command a private copy in which the listener (close-on-exec)
// is closed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "landjail/jail/protection.hpp"
#include "landjail/jail/seccomp_filter.hpp"
#include "policy/result.hpp"
#include "proxy/base/fd.hpp"

namespace lj::jail {

struct ChildSpec {
    std::string path;               ///< the resolved executable
    std::vector<std::string> argv;  ///< argv[0] as the user wrote it
    std::vector<std::string> env;   ///< "NAME=value"
    Plan plan;
    FilterProgram filter;
    std::uint16_t proxy_port = 0;  ///< weak mode: the one port Landlock allows
};

struct Child {
    pid_t pid = -1;
    UniqueFd listener;      ///< seccomp notifications (invalid in weak mode)
    UniqueFd report;        ///< read end: a failure before exec arrives here
    UniqueFd report_write;  ///< kept open: closing it early would close it for the child too
};

/// A failure the child reported before exec: the step and errno.
struct ChildFailure {
    std::string step;
    int err = 0;
    int exit_status = 125;  ///< 126 or 127 for execve, 125 for the rest
};

/// Starts the child and waits until it has installed its filter (or failed: then the
/// error names the step and errno, and the child has exited).
Result<Child> spawn_child(const ChildSpec& spec, std::optional<ChildFailure>* failure);

/// A pre-exec failure waiting in the report pipe (non-blocking), after the child exited.
std::optional<ChildFailure> read_failure(int report_fd);

/// Finds COMMAND as execvp would (PATH from `env`); errors carry 126 or 127 (as GNU env's)
/// and a message that says what is wrong, with a hint when a command that was not found is
/// in the current directory or looks like a landjail subcommand (`landjail chek`).
struct ResolvedCommand {
    std::string path;
    int exit_status = 0;  ///< 0 when found; 126 not executable, 127 not found
    std::string error;
};
ResolvedCommand resolve_command(const std::string& name, const std::string& path_env);

/// Why the command at `path` did not start, for the user: the step and errno, or for execve
/// what is wrong with the file (a missing #! interpreter, a foreign binary format).
std::string describe_failure(const ChildFailure& f, const std::string& path);

/// Whether a process of the jail other than `proxy` is still alive: landjail is the jail's
/// subreaper, so every process of it that outlived its parent is landjail's child.
bool jail_processes_left(pid_t proxy);

}  // namespace lj::jail
