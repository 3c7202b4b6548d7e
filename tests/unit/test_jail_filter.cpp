// SPDX-License-Identifier: Apache-2.0
// The child's seccomp filter (DESIGN §3), loaded into the test process itself (Criterion runs
// each test in a process of its own). The weak plan has no notifications, so every decision
// comes straight from the BPF program; the supervised program is checked with a responder
// thread standing in for the supervisor. Workers get table rows by index (only cr_malloc'd
// memory is valid in them, and an index needs none).
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "landjail/jail/seccomp_filter.hpp"
#include "tests/unit/lj_test.hpp"

using lj::jail::build_filter;
using lj::jail::FilterProgram;
using lj::jail::Plan;
using lj::test::describe;

namespace {

/// With the supervisor (the level does not matter to the filter), or weak (level 5), where
/// nothing in the program notifies.
Plan make_plan(int abi, bool supervise) {
    Plan p;
    p.level = supervise ? 1 : 5;
    p.landlock_abi = abi;
    p.supervise = supervise;
    p.weak = !supervise;
    return p;
}

FilterProgram must_build(const Plan& plan) {
    auto f = build_filter(plan);
    cr_assert(f.ok(), "build_filter(abi %d, supervise %d): %s", plan.landlock_abi, plan.supervise,
              describe(f).c_str());
    cr_assert(!f->code.empty());
    return std::move(*f);
}

/// Loads the program into this process; returns the listener fd (or 0 without one).
int load(const FilterProgram& f, unsigned flags = 0) {
#if defined(__SANITIZE_ADDRESS__)
    __lsan_do_leak_check();  // now, and not at exit: LSan ptraces, which the filter may refuse
#endif
    cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0, "NO_NEW_PRIVS: %s", strerror(errno));
    sock_fprog prog{static_cast<unsigned short>(f.code.size()),
                    const_cast<sock_filter*>(f.code.data())};
    const long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    cr_assert_geq(rc, 0, "seccomp(SET_MODE_FILTER, %u): %s", flags, strerror(errno));
    return static_cast<int>(rc);
}

/// 0 or the errno of socket(); a created socket is closed.
int try_socket(long family, long type, long proto) {
    const long fd = syscall(SYS_socket, family, type, proto);
    if (fd < 0) {
        return errno;
    }
    close(static_cast<int>(fd));
    return 0;
}

struct SocketRow {
    const char* what;
    long family;
    long type;
    long proto;
    int expect;  ///< 0: allowed (the kernel's own answer stands), else the filter's errno
};

constexpr long kNb = SOCK_NONBLOCK | SOCK_CLOEXEC;
constexpr long kMptcp = 262;  // IPPROTO_MPTCP (Linux 5.6)

const SocketRow kSocketRows[] = {
    {"AF_INET stream", AF_INET, SOCK_STREAM, 0, 0},
    {"AF_INET stream TCP", AF_INET, SOCK_STREAM, IPPROTO_TCP, 0},
    {"AF_INET stream|NONBLOCK|CLOEXEC", AF_INET, SOCK_STREAM | kNb, 0, 0},
    {"AF_INET stream|NONBLOCK|CLOEXEC TCP", AF_INET, SOCK_STREAM | kNb, IPPROTO_TCP, 0},
    {"AF_INET6 stream", AF_INET6, SOCK_STREAM, 0, 0},
    {"AF_INET6 stream|CLOEXEC TCP", AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP, 0},
    {"AF_UNIX stream", AF_UNIX, SOCK_STREAM, 0, 0},
    {"AF_UNIX dgram", AF_UNIX, SOCK_DGRAM, 0, 0},
    {"AF_UNIX seqpacket|CLOEXEC", AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, 0},
    {"AF_NETLINK route", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, 0},
    {"AF_NETLINK dgram route", AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE, 0},
    {"AF_INET UDP", AF_INET, SOCK_DGRAM, 0, EACCES},
    {"AF_INET UDP|NONBLOCK", AF_INET, SOCK_DGRAM | kNb, IPPROTO_UDP, EACCES},
    {"AF_INET6 UDP", AF_INET6, SOCK_DGRAM, 0, EACCES},
    {"AF_INET ICMP", AF_INET, SOCK_DGRAM, IPPROTO_ICMP, EACCES},
    {"AF_INET raw", AF_INET, SOCK_RAW, IPPROTO_TCP, EACCES},
    {"AF_INET6 raw", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, EACCES},
    {"AF_INET seqpacket", AF_INET, SOCK_SEQPACKET, 0, EACCES},
    {"AF_INET stream MPTCP", AF_INET, SOCK_STREAM, kMptcp, EACCES},
    {"AF_INET6 stream MPTCP", AF_INET6, SOCK_STREAM | kNb, kMptcp, EACCES},
    {"AF_INET stream SCTP", AF_INET, SOCK_STREAM, IPPROTO_SCTP, EACCES},
    {"AF_INET6 seqpacket SCTP", AF_INET6, SOCK_SEQPACKET, IPPROTO_SCTP, EACCES},
    {"AF_INET stream proto UDP", AF_INET, SOCK_STREAM, IPPROTO_UDP, EACCES},
    {"AF_INET stream proto 1", AF_INET, SOCK_STREAM, 1, EACCES},
    {"AF_PACKET raw", AF_PACKET, SOCK_RAW, 0x0300 /* htons(ETH_P_ALL) */, EACCES},
    {"AF_PACKET dgram", AF_PACKET, SOCK_DGRAM, 0, EACCES},
    {"AF_UNSPEC", AF_UNSPEC, SOCK_STREAM, 0, EACCES},
    {"AF_KEY", AF_KEY, SOCK_RAW, 2, EACCES},
    {"AF_ALG", AF_ALG, SOCK_SEQPACKET, 0, EACCES},
    {"AF_VSOCK", AF_VSOCK, SOCK_STREAM, 0, EACCES},
    {"AF_NETLINK audit", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT, EACCES},
    {"AF_NETLINK generic", AF_NETLINK, SOCK_RAW, NETLINK_GENERIC, EACCES},
    {"AF_NETLINK sock_diag", AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG, EACCES},
    {"AF_NETLINK uevent", AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT, EACCES},
    // The kernel truncates to int; the filter compares all 64 bits.
    {"family 0x1_00000002", 0x100000002L, SOCK_STREAM, 0, EACCES},
    {"family 0x1_00000010", 0x100000010L, SOCK_RAW, NETLINK_ROUTE, EACCES},
    {"family -1", -1L, SOCK_STREAM, 0, EACCES},
    {"AF_INET type 0x1_00000002", AF_INET, 0x100000002L, 0, EACCES},
    {"AF_INET proto 0x1_00000000", AF_INET, SOCK_STREAM, 0x100000000L, EACCES},
    {"AF_INET6 proto 0x1_00000006", AF_INET6, SOCK_STREAM, 0x100000006L, EACCES},
    {"AF_NETLINK proto 0x1_00000000", AF_NETLINK, SOCK_RAW, 0x100000000L, EACCES},
};

template <std::size_t N>
criterion::parameters<int> indices() {
    criterion::parameters<int> out(N);
    std::iota(out.begin(), out.end(), 0);
    return out;
}

constexpr unsigned kFastOpen = 0x20000000;  // MSG_FASTOPEN

long call_sendto(unsigned flags) {
    const char b = 'x';
    return sendto(-1, &b, 1, static_cast<int>(flags), nullptr, 0);
}
long call_sendmsg(unsigned flags) {
    msghdr m{};
    return sendmsg(-1, &m, static_cast<int>(flags));
}
long call_sendmmsg(unsigned flags) {
    mmsghdr m{};
    return sendmmsg(-1, &m, 1, static_cast<int>(flags));
}

/// An ioctl on a closed descriptor: EBADF unless the filter answers first.
long call_ioctl(unsigned long request) {
    char c = 'x';
    return syscall(SYS_ioctl, -1, request, &c);
}

rlimit g_nofile{};

/// prlimit64(pid, RLIMIT_NOFILE, current value or nothing, old).
long call_prlimit(pid_t pid, bool set) {
    getrlimit(RLIMIT_NOFILE, &g_nofile);
    rlimit old{};
    return syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, set ? &g_nofile : nullptr, &old);
}

struct CallRow {
    const char* what;
    int abi;  ///< of the weak plan
    long (*call)();
    int expect;  ///< 0: success, else errno
};

const CallRow kCallRows[] = {
    {"sendto FASTOPEN", 7, [] { return call_sendto(kFastOpen); }, EOPNOTSUPP},
    {"sendto FASTOPEN|DONTWAIT", 7, [] { return call_sendto(kFastOpen | MSG_DONTWAIT); },
     EOPNOTSUPP},
    {"sendto", 7, [] { return call_sendto(MSG_DONTWAIT); }, EBADF},
    {"sendmsg FASTOPEN", 7, [] { return call_sendmsg(kFastOpen); }, EOPNOTSUPP},
    {"sendmsg", 7, [] { return call_sendmsg(0); }, EBADF},
    {"sendmmsg FASTOPEN", 7, [] { return call_sendmmsg(kFastOpen | MSG_NOSIGNAL); }, EOPNOTSUPP},
    {"sendmmsg", 7, [] { return call_sendmmsg(0); }, EBADF},
    {"io_uring_setup", 7, [] { return syscall(SYS_io_uring_setup, 1, nullptr); }, ENOSYS},
    {"io_uring_enter", 7, [] { return syscall(SYS_io_uring_enter, -1, 0, 0, 0, nullptr, 0); },
     ENOSYS},
    {"io_uring_register", 7, [] { return syscall(SYS_io_uring_register, -1, 0, nullptr, 0); },
     ENOSYS},
    {"userfaultfd", 7, [] { return syscall(SYS_userfaultfd, O_CLOEXEC); }, ENOSYS},
    {"connect (weak: not trapped)", 7, [] { return syscall(SYS_connect, -1, nullptr, 0); }, EBADF},
    {"kill (weak: not trapped)", 4, [] { return syscall(SYS_kill, getpid(), 0); }, 0},
    {"ptrace with Landlock", 7, [] { return syscall(SYS_ptrace, PTRACE_PEEKUSER, 0, 0, 0); },
     ESRCH},
    {"ptrace without Landlock", 0, [] { return syscall(SYS_ptrace, PTRACE_PEEKUSER, 0, 0, 0); },
     EPERM},
    {"process_vm_readv with Landlock", 7,
     [] { return syscall(SYS_process_vm_readv, getpid(), nullptr, 0, nullptr, 0, 0); }, 0},
    {"process_vm_readv without Landlock", 0,
     [] { return syscall(SYS_process_vm_readv, getpid(), nullptr, 0, nullptr, 0, 0); }, EPERM},
    {"process_vm_writev without Landlock", 0,
     [] { return syscall(SYS_process_vm_writev, getpid(), nullptr, 0, nullptr, 0, 0); }, EPERM},
    {"pidfd_getfd without Landlock", 0, [] { return syscall(SYS_pidfd_getfd, -1, 0, 0); }, EPERM},
    {"pidfd_getfd with Landlock", 6, [] { return syscall(SYS_pidfd_getfd, -1, 0, 0); }, EBADF},
    // Terminal injection, at every level; the kernel ignores the request's upper 32 bits.
    {"ioctl TIOCSTI", 7, [] { return call_ioctl(TIOCSTI); }, EPERM},
    {"ioctl TIOCSTI without Landlock", 0, [] { return call_ioctl(TIOCSTI); }, EPERM},
    {"ioctl TIOCSTI, upper bits set", 7, [] { return call_ioctl(0xdead00000000UL | TIOCSTI); },
     EPERM},
    {"ioctl TIOCLINUX", 7, [] { return call_ioctl(TIOCLINUX); }, EPERM},
    {"ioctl TCGETS (not refused)", 7, [] { return call_ioctl(TCGETS); }, EBADF},
    // Another process's limits and scheduling (weak mode: refused; supervised: trapped).
    {"prlimit64 on the parent", 7, [] { return call_prlimit(getppid(), true); }, EPERM},
    {"prlimit64 on pid 1<<32 (the kernel's 0)", 7,
     [] { return syscall(SYS_prlimit64, 1L << 32, RLIMIT_NOFILE, &g_nofile, nullptr); }, EPERM},
    {"prlimit64 on itself (pid 0)", 7, [] { return call_prlimit(0, true); }, 0},
    {"prlimit64 read of the parent", 7, [] { return call_prlimit(getppid(), false); }, 0},
    {"sched_setaffinity on the parent", 7,
     [] { return syscall(SYS_sched_setaffinity, getppid(), 0, nullptr); }, EPERM},
    {"sched_setaffinity on itself", 7, [] { return syscall(SYS_sched_setaffinity, 0, 0, nullptr); },
     EINVAL},
    {"setpriority PRIO_USER", 7, [] { return syscall(SYS_setpriority, PRIO_USER, 0, 0); }, EPERM},
    {"setpriority PRIO_PROCESS self", 7,
     [] { return syscall(SYS_setpriority, PRIO_PROCESS, 0, 0); }, 0},
    {"ioprio_set on the parent", 7, [] { return syscall(SYS_ioprio_set, 1, getppid(), 0); }, EPERM},
};

/// The supervisor's part, from another thread: answers `n` notifications with EXDEV.
void answer(int listener, std::vector<seccomp_data>* seen, std::size_t n) {
    for (seccomp_notif req{}; seen->size() < n; req = {}) {
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
            return;
        }
        seen->push_back(req.data);
        seccomp_notif_resp resp{req.id, 0, -EXDEV, 0};
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
}

}  // namespace

ParameterizedTestParameters(jail_filter, socket) {
    static auto params = indices<std::size(kSocketRows)>();
    return params;
}

ParameterizedTest(int* i, jail_filter, socket) {
    const SocketRow& r = kSocketRows[*i];
    const int before = try_socket(r.family, r.type, r.proto);
    if (r.expect != 0 && before == r.expect) {
        cr_skip_test("%s: the host already answers %s without the filter", r.what,
                     strerror(before));
    }
    load(must_build(make_plan(7, false)));
    const int after = try_socket(r.family, r.type, r.proto);
    const int want = r.expect != 0 ? r.expect : before;
    cr_expect_eq(after, want, "%s: %s under the filter, expected %s (without: %s)", r.what,
                 after ? strerror(after) : "allowed", want ? strerror(want) : "allowed",
                 before ? strerror(before) : "allowed");
}

ParameterizedTestParameters(jail_filter, syscall) {
    static auto params = indices<std::size(kCallRows)>();
    return params;
}

ParameterizedTest(int* i, jail_filter, syscall) {
    const CallRow& r = kCallRows[*i];
    load(must_build(make_plan(r.abi, false)));
    errno = 0;
    const long rc = r.call();
    const int err = rc < 0 ? errno : 0;
    cr_expect_eq(err, r.expect, "%s (abi %d): %s, expected %s", r.what, r.abi,
                 err ? strerror(err) : "success", r.expect ? strerror(r.expect) : "success");
}

Test(jail_filter, programs_for_every_plan) {
    for (int abi = 0; abi <= 7; ++abi) {
        const FilterProgram s = must_build(make_plan(abi, true));
        const FilterProgram w = must_build(make_plan(abi, false));
        cr_expect(s.notify, "abi %d: the supervised program must be loaded with a listener", abi);
        cr_expect(!w.notify, "abi %d: the weak program has no notifications", abi);
        cr_expect_leq(s.code.size(), std::size_t{BPF_MAXINSNS}, "abi %d: %zu instructions", abi,
                      s.code.size());
        cr_expect_gt(s.code.size(), w.code.size(), "abi %d: supervised %zu, weak %zu", abi,
                     s.code.size(), w.code.size());
    }
}

Test(jail_filter, x32_kills_the_process, .signal = SIGSYS) {
    const rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    load(must_build(make_plan(7, false)));
    syscall(0x40000000L | SYS_getpid);
    cr_assert_fail("an x32 syscall returned under the filter");
}

ParameterizedTestParameters(jail_filter, supervised) {
    static criterion::parameters<int> abis{0, 6};  // signals trapped or not, ptrace refused or not
    return abis;
}

ParameterizedTest(int* abi, jail_filter, supervised, .timeout = 20) {
    const int listener = load(must_build(make_plan(*abi, true)), SECCOMP_FILTER_FLAG_NEW_LISTENER);
    cr_assert_gt(listener, 0);
    const bool signals = *abi < 6;
    std::vector<seccomp_data> seen;
    std::thread responder(answer, listener, &seen, signals ? 3 : 2);
    cr_expect(syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0) < 0 && errno == EXDEV, "UDP socket: %s",
              strerror(errno));
    cr_expect(syscall(SYS_connect, -1, nullptr, 0) < 0 && errno == EXDEV, "connect: %s",
              strerror(errno));
    const long killed = syscall(SYS_kill, getpid(), 0);
    cr_expect(signals ? killed < 0 && errno == EXDEV : killed == 0, "abi %d: kill: %s", *abi,
              strerror(errno));
    responder.join();
    cr_assert_eq(seen.size(), signals ? 3u : 2u);
    cr_expect_eq(seen[0].nr, SYS_socket);
    cr_expect_eq(seen[0].args[0], std::uint64_t{AF_INET});
    cr_expect_eq(seen[1].nr, SYS_connect);
    cr_expect(!signals || seen[2].nr == SYS_kill);
    // Not trapped: allowed sockets; ptrace is refused by the filter only without Landlock.
    cr_expect_eq(try_socket(AF_INET, SOCK_STREAM, 0), 0);
    const long traced = syscall(SYS_ptrace, PTRACE_PEEKUSER, 0, 0, 0);
    cr_expect(traced < 0 && errno == (*abi == 0 ? EPERM : ESRCH), "abi %d: ptrace: %s", *abi,
              strerror(errno));
}

Test(jail_filter, signal_owners_without_scopes, .timeout = 20) {
    // Without Landlock scopes: F_SETOWN and setpgid with a group go to the supervisor; the
    // owners given in memory (F_SETOWN_EX, FIOSETOWN, SIOCSPGRP) fail in the filter.
    const int listener = load(must_build(make_plan(4, true)), SECCOMP_FILTER_FLAG_NEW_LISTENER);
    cr_assert_gt(listener, 0);
    std::vector<seccomp_data> seen;
    std::thread responder(answer, listener, &seen, 2);
    cr_expect(syscall(SYS_fcntl, -1, F_SETOWN, 1) < 0 && errno == EXDEV, "F_SETOWN: %s",
              strerror(errno));
    cr_expect(syscall(SYS_setpgid, 0, 1) < 0 && errno == EXDEV, "setpgid: %s", strerror(errno));
    responder.join();
    cr_assert_eq(seen.size(), 2u);
    cr_expect_eq(seen[0].nr, SYS_fcntl);
    cr_expect_eq(seen[1].nr, SYS_setpgid);
    cr_expect(syscall(SYS_fcntl, -1, F_SETOWN_EX, nullptr) < 0 && errno == EPERM);
    cr_expect(syscall(SYS_fcntl, -1, 0x100000000L | F_SETOWN_EX, nullptr) < 0 && errno == EPERM);
    cr_expect(call_ioctl(FIOSETOWN) < 0 && errno == EPERM);
    cr_expect(call_ioctl(SIOCSPGRP) < 0 && errno == EPERM);
    // Not trapped: other fcntl commands (a trapped one would hang: no responder is left).
    cr_expect(syscall(SYS_fcntl, -1, F_GETOWN) < 0 && errno == EBADF);
    cr_expect(syscall(SYS_fcntl, -1, F_SETSIG, 10) < 0 && errno == EBADF);
}
