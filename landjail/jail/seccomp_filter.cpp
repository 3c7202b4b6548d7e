// SPDX-License-Identifier: Apache-2.0
#include "landjail/jail/seccomp_filter.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include <seccomp.h>

#include "proxy/base/fd.hpp"

namespace lj::jail {
namespace {

constexpr int kAfUnix = AF_UNIX;
constexpr int kAfInet = AF_INET;
constexpr int kAfInet6 = AF_INET6;
constexpr int kAfNetlink = AF_NETLINK;
constexpr scmp_datum_t kMsgFastOpen = 0x20000000;  // MSG_FASTOPEN
constexpr scmp_datum_t kMaxTcpProto = 6;           // IPPROTO_TCP (0 means the default: TCP)
constexpr scmp_datum_t kSolIp = 0;                 // SOL_IP
constexpr scmp_datum_t kIpOptions = 4;             // IP_OPTIONS (source routes)
constexpr scmp_datum_t kSolIpv6 = 41;              // SOL_IPV6
// IPV6_2292HOPOPTS, _2292DSTOPTS, _2292RTHDR, _2292PKTOPTIONS, IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS,
// IPV6_RTHDR, IPV6_DSTOPTS: extension headers, routing headers among them.
constexpr scmp_datum_t kIpv6HeaderOptions[] = {3, 4, 5, 6, 54, 55, 57, 59};
constexpr scmp_datum_t kSolSocket = 1;         // SOL_SOCKET
constexpr scmp_datum_t kSoBindToDevice = 25;   // SO_BINDTODEVICE
constexpr scmp_datum_t kSoBindToIfindex = 62;  // SO_BINDTOIFINDEX
constexpr scmp_datum_t kSoMark = 36;           // SO_MARK
constexpr scmp_datum_t kSolTcp = 6;            // SOL_TCP
constexpr scmp_datum_t kTcpRepair = 19;        // TCP_REPAIR
constexpr scmp_datum_t kTiocsti = 0x5412;      // TIOCSTI: push a byte into a terminal's input
constexpr scmp_datum_t kTioclinux = 0x541C;    // TIOCLINUX: e.g. paste the console selection
constexpr scmp_datum_t kFSetOwn = 8;           // F_SETOWN
constexpr scmp_datum_t kFSetOwnEx = 15;        // F_SETOWN_EX
constexpr scmp_datum_t kFioSetOwn = 0x8901;    // FIOSETOWN
constexpr scmp_datum_t kSiocSPgrp = 0x8902;    // SIOCSPGRP
constexpr scmp_datum_t kPrioProcess = 0;       // PRIO_PROCESS
constexpr scmp_datum_t kIoprioWhoProcess = 1;  // IOPRIO_WHO_PROCESS
constexpr scmp_datum_t kInt = 0xffffffff;      // the kernel reads these arguments as (unsigned) int

using Ctx = std::unique_ptr<void, void (*)(scmp_filter_ctx)>;

class Builder {
  public:
    explicit Builder(scmp_filter_ctx ctx) : ctx_(ctx) {}

    /// Adds a rule; the first failure is kept and reported by error().
    void add(std::uint32_t action, const char* syscall, std::initializer_list<scmp_arg_cmp> args) {
        if (rc_ != 0) {
            return;
        }
        const int nr = seccomp_syscall_resolve_name(syscall);
        if (nr == __NR_SCMP_ERROR) {
            rc_ = -ENOENT;
            what_ = syscall;
            return;
        }
        rc_ = seccomp_rule_add_array(ctx_, action, nr, static_cast<unsigned>(args.size()),
                                     args.size() ? args.begin() : nullptr);
        if (rc_ != 0) {
            what_ = syscall;
        }
    }

    int rc() const { return rc_; }
    const std::string& what() const { return what_; }

  private:
    scmp_filter_ctx ctx_;
    int rc_ = 0;
    std::string what_;
};

/// socket(): only AF_UNIX, AF_NETLINK with NETLINK_ROUTE, and TCP over AF_INET/AF_INET6 pass.
/// libseccomp has no "not in" comparison, so the refused values are listed: families below
/// AF_NETLINK one by one and everything above it with one GT (which also catches values with
/// any of the upper 32 bits set, since the kernel truncates them to int).
void socket_rules(Builder& b, std::uint32_t deny, bool scoped) {
    for (int fam = 0; fam < kAfNetlink; ++fam) {
        if (fam != kAfUnix && fam != kAfInet && fam != kAfInet6) {
            b.add(deny, "socket", {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(fam))});
        }
    }
    b.add(deny, "socket", {SCMP_A0(SCMP_CMP_GT, kAfNetlink)});
    if (!scoped) {
        // Without the Landlock scope a datagram could be sent to an abstract socket outside
        // the jail (sendto/sendmsg carry the address in memory): no unix datagram sockets.
        b.add(deny, "socket",
              {SCMP_A0(SCMP_CMP_EQ, kAfUnix), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM)});
        b.add(SCMP_ACT_ERRNO(kSocketDeniedErrno), "socketpair",
              {SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffff, kAfUnix),
               SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM)});
    }
    b.add(deny, "socket",
          {SCMP_A0(SCMP_CMP_EQ, kAfNetlink), SCMP_A2(SCMP_CMP_GT, 0)});  // NETLINK_ROUTE is 0
    for (const int fam : {kAfInet, kAfInet6}) {
        const auto family = static_cast<scmp_datum_t>(fam);
        for (scmp_datum_t type = 0; type < 16; ++type) {  // SOCK_TYPE_MASK is 0xf
            if (type != SOCK_STREAM) {
                b.add(deny, "socket",
                      {SCMP_A0(SCMP_CMP_EQ, family), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, type)});
            }
        }
        for (scmp_datum_t proto = 1; proto < kMaxTcpProto; ++proto) {
            b.add(deny, "socket", {SCMP_A0(SCMP_CMP_EQ, family), SCMP_A2(SCMP_CMP_EQ, proto)});
        }
        // MPTCP (262), SCTP (132), and anything with upper bits set.
        b.add(deny, "socket", {SCMP_A0(SCMP_CMP_EQ, family), SCMP_A2(SCMP_CMP_GT, kMaxTcpProto)});
    }
}

/// Terminal injection: bytes pushed into the terminal's input queue with TIOCSTI (allowed to
/// unprivileged processes on their controlling terminal while dev.tty.legacy_tiocsti = 1) are
/// read by the user's shell once landjail has exited, and run outside the jail. TIOCLINUX
/// pastes the console selection the same way. Refused with the kernel's own answer when
/// legacy_tiocsti = 0; the request is an unsigned int, so the upper 32 bits are masked.
void terminal_rules(Builder& b) {
    for (const scmp_datum_t request : {kTiocsti, kTioclinux}) {
        b.add(SCMP_ACT_ERRNO(EPERM), "ioctl", {SCMP_A1(SCMP_CMP_MASKED_EQ, kInt, request)});
    }
}

/// Calls that change another process's resource limits or scheduling: the jail may not
/// lower RLIMIT_FSIZE or RLIMIT_NOFILE of the proxy or of landjail (same user), which would
/// break the audit trail or the proxy, nor starve them. They go to the supervisor (or fail
/// in weak mode) when they may name another process than the caller: a pid (or `who`)
/// other than 0, or a `which` other than "a process". The comparisons are on all 64 bits,
/// a superset of what the kernel (reading ints) sees as non-zero; the supervisor decides on
/// the ints. prlimit64 without a new limit only reads.
void target_rules(Builder& b, std::uint32_t action) {
    b.add(action, "prlimit64", {SCMP_A0(SCMP_CMP_NE, 0), SCMP_A2(SCMP_CMP_NE, 0)});
    for (const char* name :
         {"sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr"}) {
        b.add(action, name, {SCMP_A0(SCMP_CMP_NE, 0)});
    }
    b.add(action, "setpriority", {SCMP_A0(SCMP_CMP_NE, kPrioProcess)});
    b.add(action, "setpriority", {SCMP_A1(SCMP_CMP_NE, 0)});
    b.add(action, "ioprio_set", {SCMP_A0(SCMP_CMP_NE, kIoprioWhoProcess)});
    b.add(action, "ioprio_set", {SCMP_A1(SCMP_CMP_NE, 0)});
}

/// No Landlock signal scope (ABI < 6, which also covers SIGIO): every way the jail can make
/// the kernel signal another process goes to the supervisor, or fails. Signals (by pid, by
/// process group, by pidfd), joining a process group (setpgid with a pgid), F_SETOWN. The
/// owner of F_SETOWN_EX, FIOSETOWN and SIOCSPGRP is in memory, which the supervisor could
/// only check racily: refused.
void signal_rules(Builder& b) {
    for (const char* name :
         {"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal"}) {
        b.add(SCMP_ACT_NOTIFY, name, {});
    }
    b.add(SCMP_ACT_NOTIFY, "setpgid", {SCMP_A1(SCMP_CMP_NE, 0)});
    b.add(SCMP_ACT_NOTIFY, "fcntl", {SCMP_A1(SCMP_CMP_MASKED_EQ, kInt, kFSetOwn)});
    b.add(SCMP_ACT_ERRNO(EPERM), "fcntl", {SCMP_A1(SCMP_CMP_MASKED_EQ, kInt, kFSetOwnEx)});
    for (const scmp_datum_t request : {kFioSetOwn, kSiocSPgrp}) {
        b.add(SCMP_ACT_ERRNO(EPERM), "ioctl", {SCMP_A1(SCMP_CMP_MASKED_EQ, kInt, request)});
    }
}

Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
    UniqueFd mem(memfd_create("landjail-filter", MFD_CLOEXEC));
    if (!mem.valid()) {
        return make_error(std::string("seccomp filter: memfd_create: ") + std::strerror(errno));
    }
    if (const int rc = seccomp_export_bpf(ctx, mem.get()); rc != 0) {
        return make_error(std::string("seccomp filter: export: ") + std::strerror(-rc));
    }
    struct stat st {};
    if (fstat(mem.get(), &st) != 0 || st.st_size <= 0 ||
        st.st_size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
        return make_error("seccomp filter: export produced no program");
    }
    std::vector<sock_filter> code(static_cast<std::size_t>(st.st_size) / sizeof(sock_filter));
    const auto bytes = static_cast<std::size_t>(st.st_size);
    if (pread(mem.get(), code.data(), bytes, 0) != static_cast<ssize_t>(bytes)) {
        return make_error(std::string("seccomp filter: reading the program: ") +
                          std::strerror(errno));
    }
    return code;
}

}  // namespace

Result<FilterProgram> build_filter(const Plan& plan) {
    Ctx ctx(seccomp_init(SCMP_ACT_ALLOW), seccomp_release);
    if (!ctx) {
        return make_error("seccomp filter: seccomp_init failed");
    }
    // Another architecture (i386 int 0x80, x32) kills the whole process.
    if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0) {
        return make_error("seccomp filter: cannot set the bad-architecture action");
    }
    Builder b(ctx.get());
    const std::uint32_t notify = SCMP_ACT_NOTIFY;
    const std::uint32_t socket_deny = plan.supervise ? notify : SCMP_ACT_ERRNO(kSocketDeniedErrno);
    if (plan.supervise) {
        b.add(notify, "connect", {});
    }
    socket_rules(b, socket_deny, plan.landlock_abi >= 6);
    // Socket options that send a connection elsewhere than the address the supervisor
    // connected it to: IPv4 source routes and IPv6 routing/extension headers, binding to a
    // device, firewall marks (policy routing), TCP repair. Level and option are ints: the
    // masks ignore the upper 32 bits, as the kernel does.
    const std::uint32_t no_opt = SCMP_ACT_ERRNO(EPERM);
    const auto opt = [&](scmp_datum_t level, scmp_datum_t name) {
        b.add(no_opt, "setsockopt",
              {SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff, level),
               SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffff, name)});
    };
    opt(kSolIp, kIpOptions);
    for (const scmp_datum_t name : kIpv6HeaderOptions) {
        opt(kSolIpv6, name);
    }
    opt(kSolSocket, kSoBindToDevice);
    opt(kSolSocket, kSoBindToIfindex);
    opt(kSolSocket, kSoMark);
    opt(kSolTcp, kTcpRepair);
    // TCP Fast Open connects from sendto/sendmsg without passing Landlock's connect hook.
    const std::uint32_t no_tfo = SCMP_ACT_ERRNO(kFastOpenErrno);
    b.add(no_tfo, "sendto", {SCMP_A3(SCMP_CMP_MASKED_EQ, kMsgFastOpen, kMsgFastOpen)});
    b.add(no_tfo, "sendmsg", {SCMP_A2(SCMP_CMP_MASKED_EQ, kMsgFastOpen, kMsgFastOpen)});
    b.add(no_tfo, "sendmmsg", {SCMP_A3(SCMP_CMP_MASKED_EQ, kMsgFastOpen, kMsgFastOpen)});
    terminal_rules(b);
    target_rules(b, plan.supervise ? notify : SCMP_ACT_ERRNO(EPERM));
    for (const char* name :
         {"io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd"}) {
        b.add(SCMP_ACT_ERRNO(ENOSYS), name, {});
    }
    if (plan.supervise && plan.landlock_abi < 6) {
        signal_rules(b);
    }
    if (plan.landlock_abi == 0) {
        // No Landlock domain: nothing else keeps the program away from the supervisor.
        for (const char* name :
             {"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"}) {
            b.add(SCMP_ACT_ERRNO(EPERM), name, {});
        }
    }
    if (b.rc() != 0) {
        return make_error("seccomp filter: rule for " + b.what() + ": " + std::strerror(-b.rc()));
    }
    auto code = export_bpf(ctx.get());
    if (!code) {
        return code.error();
    }
    return FilterProgram{std::move(*code), plan.supervise};
}

}  // namespace lj::jail
