// SPDX-License-Identifier: Apache-2.0
// What this host can enforce (DESIGN §3 "Degradation") and the protection plan that follows.
// probe_host() asks the kernel; plan_protection() is pure, so every level is unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/result.hpp"

namespace lj::jail {

struct HostFacts {
    std::string kernel;    ///< uname -r
    int landlock_abi = 0;  ///< 0: unavailable
    int landlock_errno =
        0;  ///< why unavailable: ENOSYS (no kernel support or filtered), EOPNOTSUPP (disabled)
    bool notify = false;  ///< seccomp user notification (SECCOMP_FILTER_FLAG_NEW_LISTENER)
    int notify_errno = 0;
    bool addfd = false;          ///< SECCOMP_IOCTL_NOTIF_ADDFD (5.9); probed by doctor only
    bool wait_killable = false;  ///< SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (5.19); doctor only
    bool pidfd_getfd = false;    ///< pidfd_getfd(2) (5.6), refused by Docker's default profile
    int pidfd_getfd_errno = 0;
    int yama_ptrace_scope = -1;  ///< -1: no Yama
    bool deep = false;           ///< addfd and wait_killable were probed (in a child process)
    // What the process runs under (issue 16: why a container reaches the level it does),
    // from /proc/self/status and /proc/sys; doctor only.
    int seccomp_mode = -1;      ///< 0 none, 1 strict, 2 filter (-1: unknown)
    int seccomp_filters = -1;   ///< filters stacked on this process (-1: unknown)
    int no_new_privs = -1;      ///< NoNewPrivs (-1: unknown)
    std::uint64_t cap_eff = 0;  ///< effective capabilities (CapEff)
    std::uint64_t cap_bnd = 0;  ///< bounding set (CapBnd)
    bool caps_known = false;
    long max_user_namespaces = -1;  ///< user.max_user_namespaces (-1: unknown)
    int userns_errno = -1;          ///< unshare(CLONE_NEWUSER) in a child: 0 ok (deep only)
    std::string container;          ///< "docker (/.dockerenv)", "kubernetes (…)", or ""
};

/// Cheap probes (a few syscalls) for `landjail -- COMMAND`; `deep` adds a forked child that
/// installs a listener to test ADDFD and WAIT_KILLABLE_RECV (for `landjail doctor`).
HostFacts probe_host(bool deep);

struct Requirements {
    bool landlock = false;  ///< --require landlock: Landlock with network rules (ABI >= 4)
    bool seccomp = false;   ///< --require seccomp: the supervisor (user notification)
};

/// Parses the --require value: a comma-separated list of landlock and seccomp.
Result<Requirements> parse_requirements(const std::string& text);

struct Plan {
    int level = 6;           ///< DESIGN §3: 1 full … 5 weak, 6 refuse
    int landlock_abi = 0;    ///< the ABI the child will use (0: no Landlock)
    bool supervise = false;  ///< seccomp user notification with the supervisor
    bool getfd = false;      ///< the supervisor uses pidfd_getfd (else ADDFD)
    bool weak = false;       ///< level 5: Landlock port rule, no supervisor
    std::string summary;  ///< one line, e.g. "full (Landlock ABI 7, supervisor with pidfd_getfd)"
    std::vector<std::string> lost;  ///< what is weaker than level 1, one item each
};

/// The strongest protection the facts allow, or an error that names what is missing
/// (`--require`, or level 6 without `--allow-weak`).
Result<Plan> plan_protection(const HostFacts& facts, const Requirements& req, bool allow_weak);

/// Capability names of a CapEff/CapBnd mask: "none", "all", or "chown,net_raw,…".
std::string capability_names(std::uint64_t mask);

/// `landjail doctor`: the facts and the plan, human-readable.
std::string describe(const HostFacts& facts);

}  // namespace lj::jail
