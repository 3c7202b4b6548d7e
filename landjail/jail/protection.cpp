// SPDX-License-Identifier: Apache-2.0
#include "landjail/jail/protection.hpp"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "landjail/jail/uapi/landlock.h"
#include "policy/text.hpp"

namespace lj::jail {
namespace {

std::string errno_name(int err) {
    switch (err) {
        case ENOSYS:
            return "ENOSYS";
        case EPERM:
            return "EPERM";
        case EOPNOTSUPP:
            return "EOPNOTSUPP";
        case EINVAL:
            return "EINVAL";
        case EACCES:
            return "EACCES";
        default:
            return std::strerror(err);
    }
}

int landlock_abi(int* err) {
    const long abi =
        syscall(__NR_landlock_create_ruleset, nullptr, 0, LJ_LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0) {
        *err = errno;
        return 0;
    }
    return static_cast<int>(abi);
}

bool probe_pidfd_getfd(int* err) {
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
    if (pidfd < 0) {
        *err = errno;
        return false;
    }
    const int fd = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, pidfd, 0));
    *err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        close(fd);
    }
    close(pidfd);
    return fd >= 0;
}

int yama_scope() {
    std::ifstream in("/proc/sys/kernel/yama/ptrace_scope");
    int v = -1;
    if (in >> v) {
        return v;
    }
    return -1;
}

/// In a forked child: install an allow-all filter with a listener, then poke the listener
/// with ADDFD for an id that does not exist (ENOENT means the ioctl exists).
void probe_listener(HostFacts& f) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        return;
    }
    const pid_t pid = fork();
    if (pid == 0) {
        unsigned char result[3] = {0, 0, 0};
        sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        sock_fprog prog{1, &allow};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                          SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
                          &prog);
        if (fd >= 0) {
            result[1] = 1;
        } else {
            fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                         &prog);
        }
        if (fd >= 0) {
            result[0] = 1;
            seccomp_notif_addfd add{};
            add.id = 1;
            add.srcfd = 0;
            result[2] =
                ioctl(static_cast<int>(fd), SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0 && errno == ENOENT
                    ? 1
                    : 0;
        } else {
            result[0] = 0;
            result[1] = static_cast<unsigned char>(errno);
        }
        (void)!write(p[1], result, sizeof result);
        _exit(0);
    }
    close(p[1]);
    unsigned char result[3] = {0, 0, 0};
    const bool got = pid > 0 && read(p[0], result, sizeof result) == 3;
    close(p[0]);
    if (pid > 0) {
        waitpid(pid, nullptr, 0);
    }
    f.deep = true;
    if (!got) {
        return;
    }
    if (result[0]) {
        f.notify = true;
        f.wait_killable = result[1] != 0;
        f.addfd = result[2] != 0;
    } else {
        f.notify = false;
        f.notify_errno = result[1];
    }
}

std::string landlock_text(const HostFacts& f) {
    if (f.landlock_abi > 0) {
        return "Landlock ABI " + std::to_string(f.landlock_abi);
    }
    if (f.landlock_errno == EOPNOTSUPP) {
        return "Landlock disabled (EOPNOTSUPP: not in the lsm= boot list)";
    }
    return "no Landlock (" + errno_name(f.landlock_errno) +
           ": no kernel support, or refused by a seccomp profile)";
}

/// What the seccomp filter and the supervisor do instead of Landlock's scopes (ABI 6), and
/// what that costs: one item per kind of thing, as doctor lists them.
void add_scope_losses(Plan& p, int abi, bool getfd) {
    const std::string no = abi > 0 ? "Landlock ABI " + std::to_string(abi) + " has no"
                                   : "without Landlock there is no";
    p.lost.push_back(
        no +
        " signal scope: the supervisor checks the target of every signal by pid (and "
        "lets the kernel deliver it: a pid reused by a new process outside the jail in "
        "between would get it); kill(0) and kill(-PGID) to a process group with members "
        "outside the jail (landjail's own, which the command starts in) reach only the "
        "jail's members, sent by landjail");
    p.lost.push_back(getfd ? "pidfd_send_signal is performed by the supervisor on its own copy "
                             "of the descriptor (the signal comes from landjail)"
                           : "pidfd_send_signal is refused (EPERM): without pidfd_getfd its "
                             "descriptor cannot be checked without a race");
    p.lost.push_back(
        "SIGIO owners and process groups are checked instead of scoped: F_SETOWN to a process "
        "or group outside the jail and setpgid into a group with members outside it fail "
        "(EPERM); F_SETOWN_EX, FIOSETOWN and SIOCSPGRP always fail (EPERM)");
    p.lost.push_back(
        "no abstract unix socket scope: the supervisor checks unix-socket connects; connects "
        "to abstract unix sockets (EPERM) and unix datagram sockets (EACCES) are refused");
}

}  // namespace

HostFacts probe_host(bool deep) {
    HostFacts f;
    utsname u{};
    if (uname(&u) == 0) {
        f.kernel = u.release;
    }
    f.landlock_abi = landlock_abi(&f.landlock_errno);
    seccomp_notif_sizes sizes{};
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) == 0) {
        f.notify = true;
    } else {
        f.notify_errno = errno;
    }
    f.pidfd_getfd = probe_pidfd_getfd(&f.pidfd_getfd_errno);
    f.yama_ptrace_scope = yama_scope();
    if (deep) {
        probe_listener(f);
    }
    return f;
}

Result<Requirements> parse_requirements(const std::string& text) {
    Requirements r;
    if (policy::trim(text).empty()) {
        return make_error("--require needs a value: landlock, seccomp or landlock,seccomp");
    }
    for (const std::string_view raw : policy::split(text, ',')) {
        const std::string item(policy::trim(raw));
        if (item == "landlock") {
            r.landlock = true;
        } else if (item == "seccomp") {
            r.seccomp = true;
        } else {
            return make_error("--require '" + text + "': unknown layer '" + item +
                              "' (expected landlock, seccomp or both: landlock,seccomp)");
        }
    }
    return r;
}

Result<Plan> plan_protection(const HostFacts& f, const Requirements& req, bool allow_weak) {
    const int abi = f.landlock_abi;
    if (req.landlock && abi < 4) {
        return make_error(
            "--require landlock: Landlock with network rules (ABI 4, Linux 6.7) is "
            "not available: " +
            landlock_text(f));
    }
    if (req.seccomp && !f.notify) {
        return make_error("--require seccomp: seccomp user notification is not available (" +
                          errno_name(f.notify_errno) + ")");
    }
    Plan p;
    p.landlock_abi = abi;
    if (f.notify) {
        p.supervise = true;
        p.getfd = f.pidfd_getfd;
        p.level = 1;
        if (!p.getfd) {
            p.level = 2;
            p.lost.push_back("pidfd_getfd is refused (" + errno_name(f.pidfd_getfd_errno) +
                             "): the supervisor connects sockets of its own and installs them "
                             "with SECCOMP_IOCTL_NOTIF_ADDFD; socket options set before "
                             "connect() are lost, and connect() on sockets other than TCP and "
                             "unix ones (e.g. netlink) is refused");
        }
        if (abi >= 4 && abi < 6) {
            p.level = 3;
        } else if (abi < 4) {
            p.level = 4;
            p.lost.push_back(
                abi > 0 ? "Landlock ABI " + std::to_string(abi) +
                              " has no network rules: only the supervisor stops direct TCP (a "
                              "files-only domain still isolates the supervisor from ptrace)"
                        : landlock_text(f) +
                              ": no kernel backstop behind the supervisor; the seccomp filter "
                              "refuses ptrace, process_vm_readv/writev and pidfd_getfd, and "
                              "other processes of this user outside the jail are open to it "
                              "through /proc/PID/mem");
        }
        if (abi < 6) {
            add_scope_losses(p, abi, p.getfd);
        }
        p.summary = p.level == 1 ? "full" : "degraded (level " + std::to_string(p.level) + ")";
        p.summary += std::string(": ") +
                     (abi > 0 ? "Landlock ABI " + std::to_string(abi) : "no Landlock") +
                     ", seccomp supervisor with " + (p.getfd ? "pidfd_getfd" : "ADDFD");
        return p;
    }
    if (abi >= 4) {
        if (!allow_weak) {
            return make_error(
                "seccomp user notification is not available (" + errno_name(f.notify_errno) +
                "): the only protection left is a Landlock port rule, which lets the program "
                "connect to ANY address on the proxy's port; pass --allow-weak to accept that");
        }
        p.level = 5;
        p.weak = true;
        p.summary = "weak (level 5): Landlock ABI " + std::to_string(abi) +
                    " port rule without the seccomp supervisor (--allow-weak)";
        p.lost.push_back("no seccomp supervisor (" + errno_name(f.notify_errno) +
                         "): the program may connect to any address on the proxy's port");
        if (abi < 6) {
            p.lost.push_back(
                "no Landlock scopes: signals (by pid, process group, pidfd or SIGIO owner) "
                "and abstract unix sockets are open");
        }
        return p;
    }
    return make_error("cannot jail: neither seccomp user notification (" +
                      errno_name(f.notify_errno) + ") nor Landlock network rules (" +
                      landlock_text(f) + ") are available; the shim alone is not a boundary");
}

std::string describe(const HostFacts& f) {
    std::ostringstream out;
    auto yes = [](bool b) { return b ? "yes" : "no"; };
    out << "kernel:                 " << f.kernel << "\n";
    out << "landlock:               " << landlock_text(f) << "\n";
    out << "  network rules (ABI 4): " << yes(f.landlock_abi >= 4) << "\n";
    out << "  scopes (ABI 6):        " << yes(f.landlock_abi >= 6) << "\n";
    out << "seccomp notification:   "
        << (f.notify ? "yes" : "no (" + errno_name(f.notify_errno) + ")") << "\n";
    if (f.deep) {
        out << "  ADDFD:                 " << yes(f.addfd) << "\n";
        out << "  WAIT_KILLABLE_RECV:    " << yes(f.wait_killable) << "\n";
    }
    out << "pidfd_getfd:            "
        << (f.pidfd_getfd ? "yes" : "no (" + errno_name(f.pidfd_getfd_errno) + ")") << "\n";
    out << "yama ptrace_scope:      "
        << (f.yama_ptrace_scope < 0 ? std::string("none") : std::to_string(f.yama_ptrace_scope))
        << "\n";
    out << "running as uid:         " << getuid() << "\n";
    return out.str();
}

}  // namespace lj::jail
