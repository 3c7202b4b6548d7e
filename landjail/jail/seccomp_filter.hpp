// SPDX-License-Identifier: Apache-2.0
// The child's seccomp filter (DESIGN §3), compiled with libseccomp in the parent so that the
// child only has to load a ready program. Decisions use registers only; anything that needs
// memory (connect's address) goes to the supervisor as a user notification.
#pragma once

#include <linux/filter.h>

#include <cerrno>
#include <vector>

#include "landjail/jail/protection.hpp"
#include "policy/result.hpp"

namespace lj::jail {

/// Errno values the filter answers with (the supervisor uses the same for its refusals).
inline constexpr int kSocketDeniedErrno = EACCES;
inline constexpr int kFastOpenErrno = EOPNOTSUPP;
inline constexpr int kConnectDeniedErrno = ECONNREFUSED;

struct FilterProgram {
    std::vector<sock_filter> code;
    bool notify = false;  ///< has SECCOMP_RET_USER_NOTIF actions: load with NEW_LISTENER
};

/// Builds the filter for the plan: native architecture only (others and x32 kill the
/// process); connect() and refused socket() calls notify the supervisor; MSG_FASTOPEN,
/// io_uring, userfaultfd and terminal injection (TIOCSTI, TIOCLINUX) fail; calls that may
/// change another process's resource limits or scheduling notify (weak mode: fail); without
/// Landlock scopes, signals notify too; without Landlock at all, ptrace,
/// process_vm_readv/writev and pidfd_getfd fail.
Result<FilterProgram> build_filter(const Plan& plan);

}  // namespace lj::jail
