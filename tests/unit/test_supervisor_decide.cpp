// SPDX-License-Identifier: Apache-2.0
// The supervisor's pure decisions (landjail/supervisor/decide.hpp), one table row per case:
// decide_connect over what a trapped connect gave (the proxy's address as IPv4, IPv6 and
// v4-mapped, other addresses and ports, unix paths with and without Landlock scopes, abstract
// and relative names, unreadable memory, bad lengths, other families), decide_socket, aim_of
// over the registers of every process call the filter notifies, decide_process over what /proc
// said, and decide_pidfd_signal. Every Verdict kind appears in some row. Workers get rows by
// index (only cr_malloc'd memory is valid in them, and an index needs none).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "landjail/jail/seccomp_filter.hpp"
#include "landjail/supervisor/decide.hpp"
#include "tests/unit/lj_test.hpp"

using lj::jail::Aim;
using lj::jail::ConnectFacts;
using lj::jail::ConnectRules;
using lj::jail::PidfdSignalFacts;
using lj::jail::Reach;
using lj::jail::Verdict;
using K = lj::jail::Verdict::Kind;
using A = lj::jail::Aim::Kind;

namespace {

constexpr pid_t kTid = 4242;

// ---- how a row describes an address ------------------------------------------------------

enum class Fam { V4, V6, Unix, Raw };

/// An address as the caller wrote it: `text` is "ADDR" (inet), a path ("@name": abstract,
/// "" unnamed) or, for Raw, just a family number in `port`. `len` -1: the natural length.
struct AddrSpec {
    Fam fam;
    const char* text;
    int port;
    long len = -1;
    std::uint32_t scope = 0;
};

void fill(const AddrSpec& a, ConnectFacts& f) {
    f.addr = {};
    if (a.fam == Fam::V4) {
        auto& in = reinterpret_cast<sockaddr_in&>(f.addr);
        in.sin_family = AF_INET;
        in.sin_port = htons(static_cast<std::uint16_t>(a.port));
        cr_assert_eq(inet_pton(AF_INET, a.text, &in.sin_addr), 1, "%s", a.text);
        f.len = sizeof(sockaddr_in);
    } else if (a.fam == Fam::V6) {
        auto& in6 = reinterpret_cast<sockaddr_in6&>(f.addr);
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(static_cast<std::uint16_t>(a.port));
        in6.sin6_scope_id = a.scope;
        cr_assert_eq(inet_pton(AF_INET6, a.text, &in6.sin6_addr), 1, "%s", a.text);
        f.len = sizeof(sockaddr_in6);
    } else if (a.fam == Fam::Unix) {
        auto& un = reinterpret_cast<sockaddr_un&>(f.addr);
        un.sun_family = AF_UNIX;
        const bool abstract = a.text[0] == '@';
        const std::size_t n = std::strlen(a.text);
        std::memcpy(un.sun_path, a.text, n);
        if (abstract) {
            un.sun_path[0] = '\0';
        }
        f.len = static_cast<long>(sizeof(sa_family_t) + n + (abstract || n == 0 ? 0 : 1));
    } else {
        f.addr.ss_family = static_cast<sa_family_t>(a.port);
        f.len = a.port == AF_UNSPEC ? 0 : static_cast<long>(sizeof(sockaddr_nl));
    }
    if (a.len >= 0 || a.len < -1) {
        f.len = a.len;
    }
}

// ---- decide_connect ------------------------------------------------------------------------

constexpr auto Done = ConnectFacts::Read::Done;
constexpr auto Unreadable = ConnectFacts::Read::Unreadable;
constexpr auto Fault = ConnectFacts::Read::Fault;
constexpr int kRefused = lj::jail::kConnectDeniedErrno;

/// The jail around the call: Landlock ABI, pidfd_getfd, and what reading the call gave.
struct Env {
    int abi;
    bool getfd;
    ConnectFacts::Read read = Done;
    bool gone = false;
    bool proxy_gone = false;
};

const Env kFull{7, true};
const Env kAbi6{6, true};
const Env kAbi5{5, true};
const Env kAbi4{4, true};
const Env kAddfd{7, false};
const Env kAddfd4{4, false};
const Env kDocker{0, false};  // no Landlock, no pidfd_getfd
const Env kProxyGone{7, true, Done, false, true};
const Env kUnreadable{7, true, Unreadable};
const Env kFault{7, true, Fault};
const Env kGone{7, true, Done, true};
const Env kGoneUnreadable{7, true, Unreadable, true};

/// The verdict a row expects. `dest`: the audited destination (Deny) or the unix path
/// connected (Perform*); `mem`: decided on bytes read from the caller's memory.
struct Want {
    K kind;
    int error = 0;
    const char* reason = nullptr;
    const char* dest = nullptr;
    bool mem = false;
};

Want perform(const char* path = nullptr, bool mem = true) {
    return {K::Perform, 0, nullptr, path, mem};
}
Want addfd(const char* path = nullptr) {
    return {K::PerformAddfd, 0, nullptr, path, true};
}
Want cont() {
    return {K::Continue};
}
Want gone_() {
    return {K::Gone};
}
Want denied(int err, const char* reason, const char* dest, bool mem = true) {
    return {K::Deny, err, reason, dest, mem};
}
Want fail(int err, bool mem) {
    return {K::Deny, err, nullptr, nullptr, mem};
}

struct ConnectCase {
    const char* name;
    AddrSpec addr;
    const char* proxy;  ///< the jail's proxy address
    Env env;
    Want want;
};

constexpr const char* kP4 = "127.0.0.1:3128";
constexpr const char* kP6 = "[::1]:3128";
constexpr Fam V4 = Fam::V4;
constexpr Fam V6 = Fam::V6;
constexpr Fam Unix = Fam::Unix;
constexpr Fam Raw = Fam::Raw;
const std::string kLong(100, 'x');  // a relative path that no longer fits once made absolute

// clang-format off
const ConnectCase kConnect[] = {
    // The proxy's exact address: performed, never continued, at every ABI.
    {"proxy v4",                     {V4, "127.0.0.1", 3128},        kP4, kFull,  perform()},
    {"proxy v4, ABI 4",              {V4, "127.0.0.1", 3128},        kP4, kAbi4,  perform()},
    {"proxy v4, no pidfd_getfd",     {V4, "127.0.0.1", 3128},        kP4, kAddfd, addfd()},
    {"proxy v4-mapped",              {V6, "::ffff:127.0.0.1", 3128}, kP4, kFull,  perform()},
    {"proxy v6",                     {V6, "::1", 3128},              kP6, kFull,  perform()},
    {"proxy v6, RFC 2133 length",    {V6, "::1", 3128, 24},          kP6, kFull,  perform()},
    {"proxy v6, no Landlock",        {V6, "::1", 3128},              kP6, kDocker, addfd()},
    // Any other inet destination: denied and audited.
    {"other v4 address",             {V4, "127.0.0.2", 3128},        kP4, kFull,
     denied(kRefused, "not_the_proxy", "127.0.0.2:3128")},
    {"port mismatch",                {V4, "127.0.0.1", 3129},        kP4, kFull,
     denied(kRefused, "not_the_proxy", "127.0.0.1:3129")},
    {"other v4-mapped address",      {V6, "::ffff:127.0.0.2", 3128}, kP4, kFull,
     denied(kRefused, "not_the_proxy", "127.0.0.2:3128")},
    {"v6 loopback, v4 proxy",        {V6, "::1", 3128},              kP4, kFull,
     denied(kRefused, "not_the_proxy", "[::1]:3128")},
    {"v4 loopback, v6 proxy",        {V4, "127.0.0.1", 3128},        kP6, kFull,
     denied(kRefused, "not_the_proxy", "127.0.0.1:3128")},
    {"v6 with another scope id",     {V6, "fe80::1", 3128, -1, 2}, "[fe80::1]:3128", kFull,
     denied(kRefused, "not_the_proxy", "[fe80::1]:3128")},
    {"other address, no Landlock",   {V4, "10.0.0.1", 80},           kP4, kDocker,
     denied(kRefused, "not_the_proxy", "10.0.0.1:80")},
    {"proxy gone",                   {V4, "127.0.0.1", 3128},        kP4, kProxyGone,
     denied(kRefused, "proxy_gone", "127.0.0.1:3128")},
    {"short v4",                     {V4, "127.0.0.1", 3128, 8},     kP4, kFull,  fail(EINVAL, true)},
    {"short v6",                     {V6, "::1", 3128, 20},          kP6, kFull,  fail(EINVAL, true)},
    // Unix: CONTINUE with Landlock scopes (ABI >= 6); without them the supervisor checks.
    {"unix path, scoped",            {Unix, "/run/x.sock", 0},       kP4, kAbi6,  cont()},
    {"unix path, no scopes",         {Unix, "/run/x.sock", 0},       kP4, kAbi5,  perform("/run/x.sock")},
    {"unix path, ADDFD",             {Unix, "/run/x.sock", 0},       kP4, kAddfd4, addfd("/run/x.sock")},
    {"abstract unix, scoped",        {Unix, "@name", 0},             kP4, kAbi6,  cont()},
    {"abstract unix, no scopes",     {Unix, "@name", 0},             kP4, kAbi5,
     denied(EPERM, "abstract_unix_socket", "unix:@name")},
    {"abstract unix, no Landlock",   {Unix, "@name", 0},             kP4, kDocker,
     denied(EPERM, "abstract_unix_socket", "unix:@name")},
    {"relative unix path, scoped",   {Unix, "run/x.sock", 0},        kP4, kAbi6,  cont()},
    {"relative unix path, no scopes", {Unix, "run/x.sock", 0},       kP4, kAbi4,
     perform("/proc/4242/cwd/run/x.sock")},
    {"relative unix path too long",  {Unix, kLong.c_str(), 0},       kP4, kAbi4,  fail(ENAMETOOLONG, true)},
    {"unnamed unix, no scopes",      {Unix, "", 0},                  kP4, kAbi4,  perform()},
    // Other families: the supervisor makes the call (or CONTINUE when Landlock holds).
    {"netlink, scoped",              {Raw, "", AF_NETLINK},          kP4, kAbi6,  cont()},
    {"netlink, no scopes",           {Raw, "", AF_NETLINK},          kP4, kAbi4,  perform()},
    {"length 0, no scopes",          {Raw, "", AF_UNSPEC},           kP4, kAbi4,  perform(nullptr, false)},
    {"length 0, scoped",             {Raw, "", AF_UNSPEC},           kP4, kAbi6,  cont()},
    // What could not be read, and the caller that left.
    {"unreadable memory",            {V4, "127.0.0.1", 3128},        kP4, kUnreadable,
     denied(EPERM, "address_unreadable", "(unreadable: Permission denied)", false)},
    {"unreadable address",           {V4, "127.0.0.1", 3128},        kP4, kFault, fail(EFAULT, false)},
    {"caller gone",                  {V4, "127.0.0.1", 3128},        kP4, kGone,  gone_()},
    {"caller gone, unreadable",      {V4, "127.0.0.1", 3128},        kP4, kGoneUnreadable, gone_()},
    {"negative length",              {V4, "127.0.0.1", 3128, -2},    kP4, kFull,  fail(EINVAL, false)},
    {"length over sockaddr_storage", {V4, "127.0.0.1", 3128, 129},   kP4, kFull,  fail(EINVAL, false)},
    {"bad length, caller gone",      {V4, "127.0.0.1", 3128, 4096},  kP4, kGone, fail(EINVAL, false)},
};
// clang-format on

constexpr int kConnectRows = sizeof kConnect / sizeof kConnect[0];

/// A Criterion parameter array of 0 … n-1.
criterion::parameters<int> index_params(int n) {
    criterion::parameters<int> out(static_cast<std::size_t>(n));
    std::iota(out.begin(), out.end(), 0);
    return out;
}

std::string str(const char* s) {
    return s ? s : "(none)";
}

/// The path of a unix address (for Perform rows).
std::string unix_path(const Verdict& v) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(v.addr);
    const std::size_t n = v.len > sizeof(sa_family_t) ? v.len - sizeof(sa_family_t) : 0;
    return std::string(un.sun_path, strnlen(un.sun_path, n));
}

void check_deny(const char* name, const Verdict& v, int error, const char* reason,
                const char* dest) {
    cr_expect_eq(v.error, error, "%s: error %d, expected %d", name, v.error, error);
    cr_expect_eq(v.reason == nullptr, reason == nullptr, "%s: reason %s, expected %s", name,
                 str(v.reason).c_str(), str(reason).c_str());
    if (reason == nullptr) {
        cr_expect_null(v.event, "%s: audited as %s, expected no event", name, v.event);
        return;
    }
    const std::string got_reason = str(v.reason);
    const std::string got_event = str(v.event);
    cr_expect(got_reason == reason, "%s: reason %s, expected %s", name, got_reason.c_str(), reason);
    cr_expect(got_event == "connect_denied", "%s: event %s", name, got_event.c_str());
    cr_expect(v.destination == dest, "%s: destination %s, expected %s", name, v.destination.c_str(),
              dest);
}

/// Perform*: our copy of the address, or the unix path `path` (made the caller's).
void check_perform(const char* name, const Verdict& v, const ConnectFacts& f, const char* path) {
    if (path == nullptr) {
        cr_expect_eq(v.len, static_cast<socklen_t>(f.len), "%s: length %u", name, v.len);
        cr_expect_eq(std::memcmp(&v.addr, &f.addr, sizeof f.addr), 0, "%s: the address", name);
        return;
    }
    const std::string got = unix_path(v);
    cr_expect(got == path, "%s: connects to %s, expected %s", name, got.c_str(), path);
    cr_expect_eq(v.len, static_cast<socklen_t>(sizeof(sa_family_t) + strlen(path) + 1),
                 "%s: length %u", name, v.len);
}

}  // namespace

ParameterizedTestParameters(supervisor_decide, connect) {
    static criterion::parameters<int> rows = index_params(kConnectRows);
    return rows;
}

ParameterizedTest(int* i, supervisor_decide, connect) {
    const ConnectCase& c = kConnect[*i];
    const Want& w = c.want;
    ConnectFacts f;
    f.tid = kTid;
    fill(c.addr, f);
    f.read = c.env.read;
    f.read_errno = c.env.read == Unreadable ? EACCES : 0;
    f.gone = c.env.gone;
    f.proxy_gone = c.env.proxy_gone;
    const auto proxy = lj::jail::parse_inet(c.proxy);
    cr_assert(proxy.ok(), "%s", c.proxy);
    const Verdict v = lj::jail::decide_connect(f, ConnectRules{*proxy, c.env.abi, c.env.getfd});
    cr_assert_eq(v.kind, w.kind, "%s: %s, expected %s", c.name, lj::jail::verdict_name(v.kind),
                 lj::jail::verdict_name(w.kind));
    cr_expect_eq(v.from_memory, w.mem, "%s: from_memory %d", c.name, v.from_memory);
    if (w.kind == K::Deny) {
        check_deny(c.name, v, w.error, w.reason, w.dest);
    }
    if (w.kind == K::Perform || w.kind == K::PerformAddfd) {
        check_perform(c.name, v, f, w.dest);
    }
}

/// Every connect verdict the table promises is reached by some row, and every verdict kind by
/// this file as a whole (the process rows below hold SignalGroup and SignalPidfd).
Test(supervisor_decide, connect_table_covers_every_connect_verdict) {
    std::set<K> seen;
    for (const ConnectCase& c : kConnect) {
        seen.insert(c.want.kind);
    }
    for (const K k : {K::Gone, K::Continue, K::Deny, K::Perform, K::PerformAddfd}) {
        cr_expect(seen.count(k) == 1, "no connect row for %s", lj::jail::verdict_name(k));
    }
}

Test(supervisor_decide, socket_is_denied_and_audited) {
    const Verdict v = lj::jail::decide_socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(v.kind, K::Deny);
    cr_expect_eq(v.error, lj::jail::kSocketDeniedErrno);
    cr_expect_str_eq(v.event, "socket_denied");
    cr_expect_str_eq(v.reason, "socket_type_not_allowed");
    cr_expect_str_eq(v.destination.c_str(), "socket(AF_INET, SOCK_DGRAM, 0)");
    cr_expect_not(v.from_memory);
}

// ---- aim_of: whom a process call names, from its registers ----------------------------------

namespace {

struct AimCase {
    const char* name;
    int nr;
    std::uint64_t a0, a1, a2;
    A kind;
    pid_t id;
    pid_t group;
};

constexpr std::uint64_t kNeg1 = 0xffffffffffffffffULL;
constexpr std::uint64_t u(int v) {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(v));
}

// clang-format off
const AimCase kAim[] = {
    {"kill(pid)", SYS_kill, 123, 10, 0, A::Process, 123, 0},
    {"kill(0): the caller's group", SYS_kill, 0, 10, 0, A::GroupSignal, 0, 0},
    {"kill(-1): everyone", SYS_kill, kNeg1, 10, 0, A::Everyone, 0, 0},
    {"kill(-pgrp)", SYS_kill, u(-77), 10, 0, A::GroupSignal, 77, 0},
    {"kill(INT_MIN)", SYS_kill, u(INT_MIN), 10, 0, A::GroupSignal, INT_MIN, 0},
    {"kill, upper bits ignored", SYS_kill, 0xffffffff00000005ULL, 10, 0, A::Process, 5, 0},
    {"tkill(tid)", SYS_tkill, 5, 10, 0, A::Process, 5, 0},
    {"tkill(0)", SYS_tkill, 0, 10, 0, A::Process, 0, 0},
    {"tgkill(tgid, tid)", SYS_tgkill, 6, 7, 10, A::Process, 6, 0},
    {"rt_sigqueueinfo(tgid)", SYS_rt_sigqueueinfo, 8, 10, 0, A::Process, 8, 0},
    {"rt_tgsigqueueinfo(tgid)", SYS_rt_tgsigqueueinfo, 9, 9, 10, A::Process, 9, 0},
    {"setpgid(0, 0)", SYS_setpgid, 0, 0, 0, A::Own, 0, 0},
    {"setpgid(0, pgid)", SYS_setpgid, 0, 50, 0, A::Join, 0, 50},
    {"setpgid(pid, pgid)", SYS_setpgid, 12, 50, 0, A::Join, 12, 50},
    {"F_SETOWN 0", SYS_fcntl, 3, F_SETOWN, 0, A::Own, 0, 0},
    {"F_SETOWN pid", SYS_fcntl, 3, F_SETOWN, 44, A::Process, 44, 0},
    {"F_SETOWN -pgrp", SYS_fcntl, 3, F_SETOWN, u(-44), A::Group, 44, 0},
    {"F_SETOWN INT_MIN", SYS_fcntl, 3, F_SETOWN, u(INT_MIN), A::Everyone, 0, 0},
    {"fcntl, not F_SETOWN", SYS_fcntl, 3, F_GETFL, 0, A::Unknown, 0, 0},
    {"setpriority(PROCESS, 0)", SYS_setpriority, PRIO_PROCESS, 0, 5, A::Own, 0, 0},
    {"setpriority(PROCESS, pid)", SYS_setpriority, PRIO_PROCESS, 10, 5, A::Process, 10, 0},
    {"setpriority(PGRP, 0)", SYS_setpriority, PRIO_PGRP, 0, 5, A::Group, 0, 0},
    {"setpriority(PGRP, pgrp)", SYS_setpriority, PRIO_PGRP, 20, 5, A::Group, 20, 0},
    {"setpriority(USER, uid)", SYS_setpriority, PRIO_USER, 0, 5, A::Everyone, 0, 0},
    {"ioprio_set(WHO_PROCESS, 0)", SYS_ioprio_set, 1, 0, 0, A::Own, 0, 0},
    {"ioprio_set(WHO_PROCESS, pid)", SYS_ioprio_set, 1, 10, 0, A::Process, 10, 0},
    {"ioprio_set(WHO_PGRP, pgrp)", SYS_ioprio_set, 2, 20, 0, A::Group, 20, 0},
    {"ioprio_set(WHO_USER, uid)", SYS_ioprio_set, 3, 1000, 0, A::Everyone, 0, 0},
    {"prlimit64(0, …)", SYS_prlimit64, 0, RLIMIT_NOFILE, 0x1000, A::Own, 0, 0},
    {"prlimit64(pid, …)", SYS_prlimit64, 33, RLIMIT_FSIZE, 0x1000, A::Process, 33, 0},
    {"sched_setaffinity(pid)", SYS_sched_setaffinity, 33, 8, 0x1000, A::Process, 33, 0},
    {"sched_setscheduler(pid)", SYS_sched_setscheduler, 33, 0, 0x1000, A::Process, 33, 0},
    {"sched_setparam(pid)", SYS_sched_setparam, 33, 0x1000, 0, A::Process, 33, 0},
    {"sched_setattr(pid)", SYS_sched_setattr, 33, 0x1000, 0, A::Process, 33, 0},
    {"sched_setattr(0)", SYS_sched_setattr, 0, 0x1000, 0, A::Own, 0, 0},
    {"a call the filter never notifies", SYS_getpid, 0, 0, 0, A::Unknown, 0, 0},
};
// clang-format on

constexpr int kAimRows = sizeof kAim / sizeof kAim[0];

}  // namespace

ParameterizedTestParameters(supervisor_decide, aim_of) {
    static criterion::parameters<int> rows = index_params(kAimRows);
    return rows;
}

ParameterizedTest(int* i, supervisor_decide, aim_of) {
    const AimCase& c = kAim[*i];
    seccomp_data call{};
    call.nr = c.nr;
    call.args[0] = c.a0;
    call.args[1] = c.a1;
    call.args[2] = c.a2;
    const Aim aim = lj::jail::aim_of(call);
    cr_assert_eq(static_cast<int>(aim.kind), static_cast<int>(c.kind), "%s: kind %d, expected %d",
                 c.name, static_cast<int>(aim.kind), static_cast<int>(c.kind));
    cr_expect_eq(aim.id, c.id, "%s: id %d, expected %d", c.name, aim.id, c.id);
    cr_expect_eq(aim.group, c.group, "%s: group %d, expected %d", c.name, aim.group, c.group);
}

// ---- decide_process: the aim and what /proc said about it -----------------------------------

namespace {

struct ProcessCase {
    const char* name;
    Aim aim;
    Reach reach;
    K kind;
    int error;
    std::vector<pid_t> members;  ///< SignalGroup
};

Reach process(bool in_jail) {
    Reach r;
    r.in_jail = in_jail;
    return r;
}

Reach group(pid_t pgrp, std::vector<pid_t> inside, bool outside) {
    Reach r;
    r.group = pgrp;
    r.inside = std::move(inside);
    r.outside = outside;
    return r;
}

Reach join(pid_t mover, pid_t now, Reach g = {}) {
    g.mover = mover;
    g.mover_group = now;
    return g;
}

Reach gone() {
    Reach r;
    r.gone = true;
    return r;
}

// clang-format off
const ProcessCase kProcess[] = {
    {"own",                             {A::Own},             {},                    K::Continue, 0, {}},
    {"process in the jail",             {A::Process, 10},     process(true),         K::Continue, 0, {}},
    {"process outside",                 {A::Process, 10},     process(false),        K::Deny, EPERM, {}},
    {"group all in the jail",           {A::Group, 20},       group(20, {20, 21}, false), K::Continue, 0, {}},
    {"group with outsiders",            {A::Group, 20},       group(20, {21}, true), K::Deny, EPERM, {}},
    {"group with no members",           {A::Group, 20},       group(20, {}, false),  K::Deny, EPERM, {}},
    {"kill to an empty group",          {A::GroupSignal, 20}, group(20, {}, false),  K::Continue, 0, {}},
    {"kill to a jailed group",          {A::GroupSignal, 0},  group(20, {20, 21}, false), K::Continue, 0, {}},
    {"kill to a mixed group",           {A::GroupSignal, 0},  group(20, {21, 22}, true), K::SignalGroup, 0, {21, 22}},
    {"kill to an outside group",        {A::GroupSignal, 30}, group(30, {}, true),   K::SignalGroup, 0, {}},
    {"setpgid into a group of its own", {A::Join, 0, 40},     join(40, 7),           K::Continue, 0, {}},
    {"setpgid into the group it is in", {A::Join, 40, 7},     join(40, 7),           K::Continue, 0, {}},
    {"setpgid into a jailed group",     {A::Join, 40, 50}, join(40, 7, group(50, {50}, false)), K::Continue, 0, {}},
    {"setpgid into a mixed group",      {A::Join, 40, 50}, join(40, 7, group(50, {50}, true)), K::Deny, EPERM, {}},
    {"setpgid into an empty group",     {A::Join, 40, 50}, join(40, 7, group(50, {}, false)), K::Deny, EPERM, {}},
    {"setpgid, mover unknown",          {A::Join, 0, -1},  join(-2, -1, group(-1, {}, false)), K::Deny, EPERM, {}},
    {"everyone",                        {A::Everyone},        {},                    K::Deny, EPERM, {}},
    {"unknown call",                    {A::Unknown},         {},                    K::Deny, ENOSYS, {}},
    {"unknown call, caller gone",       {A::Unknown},         gone(),                K::Deny, ENOSYS, {}},
    {"caller gone",                     {A::Process, 10},     gone(),                K::Gone, 0, {}},
    {"caller gone, own",                {A::Own},             gone(),                K::Gone, 0, {}},
};
// clang-format on

constexpr int kProcessRows = sizeof kProcess / sizeof kProcess[0];

}  // namespace

ParameterizedTestParameters(supervisor_decide, process) {
    static criterion::parameters<int> rows = index_params(kProcessRows);
    return rows;
}

ParameterizedTest(int* i, supervisor_decide, process) {
    const ProcessCase& c = kProcess[*i];
    const Verdict v = lj::jail::decide_process(c.aim, c.reach);
    cr_assert_eq(v.kind, c.kind, "%s: %s, expected %s", c.name, lj::jail::verdict_name(v.kind),
                 lj::jail::verdict_name(c.kind));
    cr_expect_eq(v.error, c.error, "%s: error %d, expected %d", c.name, v.error, c.error);
    cr_expect_not(v.from_memory, "%s: a process verdict rests on registers and /proc", c.name);
    cr_expect_null(v.event, "%s: process refusals are not audited", c.name);
    if (c.kind == K::SignalGroup) {
        cr_expect_eq(v.group, c.reach.group, "%s: group %d", c.name, v.group);
        cr_expect(v.members == c.members, "%s: %zu members", c.name, v.members.size());
    }
}

// ---- decide_pidfd_signal ---------------------------------------------------------------------

namespace {

struct PidfdCase {
    const char* name;
    bool gone, getfd;
    int file_errno;
    pid_t target;
    bool to_group;
    Reach reach;
    K kind;
    int error;
};

// clang-format off
const PidfdCase kPidfd[] = {
    {"target in the jail", false, true, 0, 10, false, process(true), K::SignalPidfd, 0},
    {"target outside", false, true, 0, 10, false, process(false), K::Deny, EPERM},
    {"group all in the jail", false, true, 0, 20, true, group(20, {20}, false), K::SignalPidfd, 0},
    {"group with outsiders", false, true, 0, 20, true, group(20, {20}, true), K::Deny, EPERM},
    {"group, target alone in the jail", false, true, 0, 20, true, process(true), K::Deny, EPERM},
    {"no pidfd_getfd", false, false, 0, 0, false, {}, K::Deny, EPERM},
    {"no such descriptor", false, true, EBADF, 0, false, {}, K::Deny, EBADF},
    {"pidfd_getfd refused", false, true, EPERM, 0, false, {}, K::Deny, EPERM},
    {"not a pidfd", false, true, 0, 0, false, {}, K::Deny, EBADF},
    {"target exited", false, true, 0, -1, false, {}, K::Deny, ESRCH},
    {"caller gone", true, true, 0, 0, false, {}, K::Gone, 0},
};
// clang-format on

constexpr int kPidfdRows = sizeof kPidfd / sizeof kPidfd[0];

}  // namespace

ParameterizedTestParameters(supervisor_decide, pidfd_signal) {
    static criterion::parameters<int> rows = index_params(kPidfdRows);
    return rows;
}

ParameterizedTest(int* i, supervisor_decide, pidfd_signal) {
    const PidfdCase& c = kPidfd[*i];
    PidfdSignalFacts f;
    f.gone = c.gone;
    f.getfd = c.getfd;
    f.file_errno = c.file_errno;
    f.target = c.target;
    f.to_group = c.to_group;
    f.reach = c.reach;
    const Verdict v = lj::jail::decide_pidfd_signal(f);
    cr_assert_eq(v.kind, c.kind, "%s: %s, expected %s", c.name, lj::jail::verdict_name(v.kind),
                 lj::jail::verdict_name(c.kind));
    cr_expect_eq(v.error, c.error, "%s: error %d, expected %d", c.name, v.error, c.error);
}

/// The process tables hold the verdicts only process calls reach.
Test(supervisor_decide, process_tables_cover_every_process_verdict) {
    std::set<K> seen;
    for (const ProcessCase& c : kProcess) {
        seen.insert(c.kind);
    }
    for (const PidfdCase& c : kPidfd) {
        seen.insert(c.kind);
    }
    for (const K k : {K::Gone, K::Continue, K::Deny, K::SignalGroup, K::SignalPidfd}) {
        cr_expect(seen.count(k) == 1, "no process row for %s", lj::jail::verdict_name(k));
    }
}
