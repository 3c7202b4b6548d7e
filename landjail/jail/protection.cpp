// SPDX-License-Identifier: Apache-2.0
#include "landjail/jail/protection.hpp"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "landjail/jail/uapi/landlock.h"
#include "policy/text.hpp"
#include "proxy/base/diag.hpp"
#include "proxy/base/fd.hpp"

namespace lj::jail {
namespace {

using diag::errno_name;

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
    const UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)));
    if (!pidfd.valid()) {
        *err = errno;
        return false;
    }
    const UniqueFd fd(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), pidfd.get(), 0)));
    *err = fd.valid() ? 0 : errno;
    return fd.valid();
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
    UniqueFd read_end(p[0]), write_end(p[1]);
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
        (void)!write(write_end.get(), result, sizeof result);
        _exit(0);
    }
    write_end.reset();  // EOF for the read below if the child dies without a word
    unsigned char result[3] = {0, 0, 0};
    const bool got = pid > 0 && read(read_end.get(), result, sizeof result) == 3;
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

/// Seccomp, NoNewPrivs and the capability sets of this process (/proc/self/status).
void probe_process(HostFacts& f) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        const std::string key = line.substr(0, colon);
        std::istringstream value(line.substr(colon + 1));
        if (key == "Seccomp") {
            value >> f.seccomp_mode;
        } else if (key == "Seccomp_filters") {
            value >> f.seccomp_filters;
        } else if (key == "NoNewPrivs") {
            value >> f.no_new_privs;
        } else if (key == "CapEff") {
            value >> std::hex >> f.cap_eff;
            f.caps_known = true;
        } else if (key == "CapBnd") {
            value >> std::hex >> f.cap_bnd;
        }
    }
    std::ifstream max("/proc/sys/user/max_user_namespaces");
    if (!(max >> f.max_user_namespaces)) {
        f.max_user_namespaces = -1;
    }
}

/// Whether this process could create a user namespace (unshare in a forked child).
int probe_user_namespace() {
    const pid_t pid = fork();
    if (pid == 0) {
        _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : (errno & 0xff));
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

/// The container runtime's marks, when there are any.
std::string detect_container() {
    if (access("/.dockerenv", F_OK) == 0) {
        return "docker (/.dockerenv)";
    }
    if (access("/run/.containerenv", F_OK) == 0) {
        return "podman (/run/.containerenv)";
    }
    if (std::getenv("KUBERNETES_SERVICE_HOST")) {
        return "kubernetes (KUBERNETES_SERVICE_HOST)";
    }
    return "";
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
        probe_process(f);
        f.userns_errno = probe_user_namespace();
        f.container = detect_container();
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

namespace {

std::string seccomp_text(const HostFacts& f) {
    switch (f.seccomp_mode) {
        case 0:
            return "none";
        case 1:
            return "strict";
        case 2:
            return "filter (" + std::to_string(f.seccomp_filters) +
                   (f.seccomp_filters == 1 ? " filter" : " filters") +
                   " from outside: a container runtime's profile or a service manager's)";
        default:
            return "unknown";
    }
}

std::string userns_text(const HostFacts& f) {
    std::string s = f.userns_errno == 0 ? "yes" : "no";
    if (f.userns_errno > 0) {
        s += " (" + errno_name(f.userns_errno);
        if (f.max_user_namespaces == 0) {
            s += ", user.max_user_namespaces = 0";
        }
        s += ")";
    }
    return s + "; landjail does not use them";
}

/// Why the layers above are what they are, in a container: its seccomp profile and
/// capabilities (Docker's default profile allows pidfd_getfd only with CAP_SYS_PTRACE).
void describe_process(std::ostringstream& out, const HostFacts& f) {
    constexpr std::uint64_t kSysPtrace = 1ULL << 19;
    out << "seccomp (this process): " << seccomp_text(f) << "\n";
    out << "no_new_privs:           " << (f.no_new_privs == 1 ? "yes" : "no") << "\n";
    if (f.caps_known) {
        out << "capabilities effective: " << capability_names(f.cap_eff) << "\n";
        out << "capabilities bounding:  " << capability_names(f.cap_bnd) << "\n";
    }
    out << "user namespaces:        " << userns_text(f) << "\n";
    out << "container:              " << (f.container.empty() ? "none seen" : f.container) << "\n";
    if (f.seccomp_mode == 2 && !f.pidfd_getfd && !(f.cap_bnd & kSysPtrace)) {
        out << "  pidfd_getfd is refused by the seccomp filter above (Docker's default profile "
               "allows it only to containers with CAP_SYS_PTRACE)\n";
    }
    if (f.seccomp_mode == 2 && f.landlock_abi == 0 && f.landlock_errno != EOPNOTSUPP) {
        out << "  Landlock's system calls are refused, most likely by the seccomp filter above "
               "(profiles older than Landlock refuse them)\n";
    }
}

}  // namespace

std::string capability_names(std::uint64_t mask) {
    static const char* const kNames[] = {"chown",
                                         "dac_override",
                                         "dac_read_search",
                                         "fowner",
                                         "fsetid",
                                         "kill",
                                         "setgid",
                                         "setuid",
                                         "setpcap",
                                         "linux_immutable",
                                         "net_bind_service",
                                         "net_broadcast",
                                         "net_admin",
                                         "net_raw",
                                         "ipc_lock",
                                         "ipc_owner",
                                         "sys_module",
                                         "sys_rawio",
                                         "sys_chroot",
                                         "sys_ptrace",
                                         "sys_pacct",
                                         "sys_admin",
                                         "sys_boot",
                                         "sys_nice",
                                         "sys_resource",
                                         "sys_time",
                                         "sys_tty_config",
                                         "mknod",
                                         "lease",
                                         "audit_write",
                                         "audit_control",
                                         "setfcap",
                                         "mac_override",
                                         "mac_admin",
                                         "syslog",
                                         "wake_alarm",
                                         "block_suspend",
                                         "audit_read",
                                         "perfmon",
                                         "bpf",
                                         "checkpoint_restore"};
    constexpr std::size_t kKnown = sizeof kNames / sizeof kNames[0];
    const std::uint64_t all = (1ULL << kKnown) - 1;
    if (mask == 0) {
        return "none";
    }
    if ((mask & all) == all) {
        return "all";
    }
    // Most of them (root outside a container): name the few that are missing.
    const bool most = __builtin_popcountll(mask & all) > static_cast<int>(kKnown / 2);
    std::string out;
    for (std::size_t i = 0; i < kKnown; ++i) {
        if (((mask >> i) & 1) != (most ? 0 : 1)) {
            continue;
        }
        out += (out.empty() ? "" : ",") + std::string(kNames[i]);
    }
    return most ? "all but " + out : out;
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
    if (f.deep) {
        describe_process(out, f);
    }
    return out.str();
}

}  // namespace lj::jail
