// SPDX-License-Identifier: Apache-2.0
// The Supervisor's executor driven by a fake NotifyIo: notifications are handed to
// handle_one() as if the kernel had trapped this test process's own calls (its pid, its
// descriptors, addresses in its own memory, read for real through /proc/TID/mem), and the
// fake records what the supervisor answers, installs, connects and signals. Every path is
// checked to answer exactly once (or not at all when the caller is gone): performed connects,
// denials with their audit event before the answer, the ADDFD fallback when pidfd_getfd
// fails, a stale cached caller read once more (and only once), unreadable addresses, bad
// lengths, refused sockets, unknown calls, and the process calls (signals to a group with
// members outside the jail, pidfd_send_signal, setpgid, F_SETOWN, prlimit).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "landjail/jail/seccomp_filter.hpp"
#include "landjail/supervisor/supervisor.hpp"
#include "tests/unit/lj_test.hpp"

using lj::UniqueFd;
using lj::jail::NotifyIo;
using lj::jail::Supervisor;
using lj::jail::SupervisorConfig;

namespace {

/// A NotifyIo that records everything and answers as scripted. getfd() on this process
/// itself is a dup() (the caller is the test process) unless an errno is queued.
class FakeNotifyIo final : public NotifyIo {
  public:
    std::deque<seccomp_notif> queue;
    std::vector<std::string>* log = nullptr;  ///< "send", "audit": the order of effects

    std::vector<seccomp_notif_resp> sent;
    int id_valid_calls = 0;
    bool valid = true;
    std::deque<int> getfd_errnos;  ///< one per getfd() call; empty: succeed
    int getfd_calls = 0;
    int last_copy = -1;              ///< the descriptor the last successful getfd() made
    bool copy_open_at_send = false;  ///< it was still open when the answer was sent
    int connect_errno = 0;
    std::vector<sockaddr_storage> connected;
    std::vector<seccomp_notif_addfd> added;
    int addfd_errno = 0;
    std::deque<int> alive_errnos;  ///< answers to send_signal(pidfd, 0); empty: alive
    struct Signal {
        int pidfd;
        int sig;
        unsigned flags;
    };
    std::vector<Signal> signals;  ///< real signals asked for (never sent)

    Received recv(seccomp_notif& req) override {
        if (queue.empty()) {
            return Received::Finished;
        }
        req = queue.front();
        queue.pop_front();
        return Received::Notification;
    }
    void send(const seccomp_notif_resp& resp) override {
        sent.push_back(resp);
        copy_open_at_send = last_copy >= 0 && fcntl(last_copy, F_GETFD) != -1;
        if (log) {
            log->push_back("send");
        }
    }
    bool id_valid(std::uint64_t) override {
        ++id_valid_calls;
        return valid;
    }
    int addfd(const seccomp_notif_addfd& add) override {
        added.push_back(add);
        return addfd_errno;
    }
    bool set_sync_wakeup() override { return false; }
    int getfd(int, int fd, UniqueFd& out) override {
        ++getfd_calls;
        if (!getfd_errnos.empty()) {
            const int err = getfd_errnos.front();
            getfd_errnos.pop_front();
            if (err != 0) {
                return err;
            }
        }
        out.reset(fcntl(fd, F_DUPFD_CLOEXEC, 0));
        last_copy = out.get();
        return out.valid() ? 0 : errno;
    }
    int connect(int, const sockaddr_storage& addr, socklen_t) override {
        connected.push_back(addr);
        return connect_errno;
    }
    int send_signal(int pidfd, int sig, siginfo_t*, unsigned flags) override {
        if (sig == 0) {
            const int err = alive_errnos.empty() ? 0 : alive_errnos.front();
            if (!alive_errnos.empty()) {
                alive_errnos.pop_front();
            }
            return err;
        }
        signals.push_back({pidfd, sig, flags});
        return 0;
    }
};

pid_t gettid_() {
    return static_cast<pid_t>(syscall(SYS_gettid));
}

sockaddr_in v4(const char* text, std::uint16_t port) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET, text, &in.sin_addr), 1);
    return in;
}

/// The supervisor under test, its fake, and the audit events it recorded.
struct Rig {
    FakeNotifyIo* io = nullptr;
    std::vector<std::string> log;
    std::vector<lj::proxy::AuditEvent> events;
    std::unique_ptr<Supervisor> sup;
    std::uint64_t next_id = 1;

    explicit Rig(bool getfd = true, int abi = 7, pid_t child = getpid(), pid_t self = getppid()) {
        auto fake = std::make_unique<FakeNotifyIo>();
        io = fake.get();
        io->log = &log;
        SupervisorConfig c;
        c.proxy = *lj::jail::parse_inet("127.0.0.1:3128");
        c.landlock_abi = abi;
        c.getfd = getfd;
        c.audit = [this](lj::proxy::AuditEvent&& e) {
            log.push_back("audit");
            events.push_back(std::move(e));
        };
        c.self = self;
        c.child = child;
        sup = std::make_unique<Supervisor>(c, std::move(fake));
    }

    /// Hands one notification of this thread to the supervisor; returns how many answers
    /// it sent for it.
    std::size_t handle(int nr, std::uint64_t a0, std::uint64_t a1 = 0, std::uint64_t a2 = 0,
                       std::uint64_t a3 = 0, pid_t pid = gettid_()) {
        seccomp_notif n{};
        n.id = next_id++;
        n.pid = static_cast<std::uint32_t>(pid);
        n.data.nr = nr;
        n.data.args[0] = a0;
        n.data.args[1] = a1;
        n.data.args[2] = a2;
        n.data.args[3] = a3;
        io->queue.push_back(n);
        const std::size_t before = io->sent.size();
        cr_assert(sup->handle_one(), "handle_one stopped");
        for (std::size_t i = before; i < io->sent.size(); ++i) {
            cr_assert_eq(io->sent[i].id, n.id, "answered another notification");
        }
        return io->sent.size() - before;
    }

    /// connect(fd, &sa, len) as trapped.
    template <class Sa>
    std::size_t connect(int fd, const Sa& sa, std::uint64_t len = sizeof(Sa)) {
        return handle(SYS_connect, static_cast<std::uint64_t>(fd),
                      reinterpret_cast<std::uintptr_t>(&sa), len);
    }

    const seccomp_notif_resp& last() const { return io->sent.back(); }
};

UniqueFd tcp_socket(int flags = 0) {
    UniqueFd s(socket(AF_INET, SOCK_STREAM | flags, 0));
    cr_assert(s.valid(), "socket: %s", strerror(errno));
    return s;
}

void expect_answer(const seccomp_notif_resp& r, int err, bool cont = false) {
    cr_expect_eq(r.error, -err, "answered error %d, expected %d", -r.error, err);
    cr_expect_eq(r.val, 0);
    cr_expect_eq(r.flags, cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0u, "flags %u", r.flags);
}

/// A pid that names no process: a child that was reaped.
pid_t dead_pid() {
    const pid_t pid = fork();
    if (pid == 0) {
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return pid;
}

}  // namespace

// ---- connect -------------------------------------------------------------------------------

Test(supervisor_answer, proxy_connect_performed_on_the_callers_socket) {
    Rig rig;
    const UniqueFd s = tcp_socket();
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    cr_assert_eq(rig.connect(s.get(), proxy), 1u, "answered once");
    expect_answer(rig.last(), 0);
    cr_expect_eq(rig.io->getfd_calls, 1);
    cr_assert_eq(rig.io->connected.size(), 1u);
    cr_expect_eq(std::memcmp(&rig.io->connected[0], &proxy, sizeof proxy), 0, "our copy");
    cr_expect(rig.io->added.empty(), "no ADDFD");
    cr_expect(rig.events.empty(), "allowed connects are not audited here");
    cr_expect_eq(rig.io->id_valid_calls, 1, "a fresh caller is confirmed with ID_VALID");
    // The caller waits for the answer, not for the supervisor's close(2) of its copy.
    cr_expect(rig.io->copy_open_at_send, "our copy of the socket was closed before the answer");
    cr_expect_eq(fcntl(rig.io->last_copy, F_GETFD), -1, "our copy is closed after the answer");
}

Test(supervisor_answer, proxy_connect_result_is_the_answer) {
    Rig rig;
    rig.io->connect_errno = EINPROGRESS;
    const UniqueFd s = tcp_socket(SOCK_NONBLOCK);
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    cr_assert_eq(rig.connect(s.get(), proxy), 1u);
    expect_answer(rig.last(), EINPROGRESS);
}

Test(supervisor_answer, other_address_audited_then_refused) {
    Rig rig;
    const UniqueFd s = tcp_socket();
    const sockaddr_in other = v4("127.0.0.2", 3128);
    cr_assert_eq(rig.connect(s.get(), other), 1u);
    expect_answer(rig.last(), lj::jail::kConnectDeniedErrno);
    cr_expect(rig.io->connected.empty(), "nothing connected");
    cr_expect_eq(rig.io->getfd_calls, 0, "the caller's socket is not even taken");
    cr_assert_eq(rig.events.size(), 1u, "one event per decision");
    cr_expect_eq(rig.events[0].event, "connect_denied");
    cr_expect_eq(rig.events[0].reason, "not_the_proxy");
    cr_expect(rig.events[0].destination == "127.0.0.2:3128");
    cr_expect(rig.events[0].pid == gettid_());
    cr_expect(rig.log == (std::vector<std::string>{"audit", "send"}), "audited before the answer");
}

Test(supervisor_answer, getfd_refused_falls_back_to_addfd) {
    Rig rig;
    rig.io->getfd_errnos = {EPERM};
    rig.io->connect_errno = EINPROGRESS;
    const UniqueFd s = tcp_socket(SOCK_NONBLOCK | SOCK_CLOEXEC);
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    cr_assert_eq(rig.connect(s.get(), proxy), 1u, "answered once");
    expect_answer(rig.last(), EINPROGRESS);
    cr_assert_eq(rig.io->added.size(), 1u, "installed with ADDFD");
    const seccomp_notif_addfd& add = rig.io->added[0];
    cr_expect_eq(add.id, rig.last().id);
    cr_expect_eq(add.flags, static_cast<unsigned>(SECCOMP_ADDFD_FLAG_SETFD));
    cr_expect_eq(add.newfd, static_cast<unsigned>(s.get()), "in place of the caller's socket");
    cr_expect_eq(add.newfd_flags, static_cast<unsigned>(O_CLOEXEC), "the caller's O_CLOEXEC");
    cr_expect_eq(rig.io->connected.size(), 1u);
}

Test(supervisor_answer, addfd_mode_never_takes_the_callers_socket) {
    Rig rig(false);
    const UniqueFd s = tcp_socket();
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    cr_assert_eq(rig.connect(s.get(), proxy), 1u);
    expect_answer(rig.last(), 0);
    cr_expect_eq(rig.io->getfd_calls, 0);
    cr_assert_eq(rig.io->added.size(), 1u);
    cr_expect_eq(rig.io->added[0].newfd_flags, 0u);
}

Test(supervisor_answer, addfd_failures) {
    Rig rig(false);
    const UniqueFd s = tcp_socket();
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    rig.io->addfd_errno = ENOENT;  // the caller is gone: nothing to answer
    cr_expect_eq(rig.connect(s.get(), proxy), 0u);
    rig.io->addfd_errno = EINVAL;  // a kernel without ADDFD
    cr_assert_eq(rig.connect(s.get(), proxy), 1u);
    expect_answer(rig.last(), ENOSYS);
    rig.io->addfd_errno = 0;
    rig.io->connect_errno = ECONNREFUSED;  // our own connect failed: that is the answer
    cr_assert_eq(rig.connect(s.get(), proxy), 1u);
    expect_answer(rig.last(), ECONNREFUSED);
}

Test(supervisor_answer, addfd_refuses_families_it_cannot_make) {
    Rig rig(false, 4);
    const UniqueFd s = tcp_socket();
    sockaddr_storage nl{};
    nl.ss_family = AF_NETLINK;
    cr_assert_eq(rig.connect(s.get(), nl, 12), 1u);
    expect_answer(rig.last(), EACCES);
    cr_expect(rig.io->added.empty());
}

Test(supervisor_answer, stale_cached_caller_is_read_once_more) {
    Rig rig;
    const UniqueFd s = tcp_socket();
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    cr_assert_eq(rig.connect(s.get(), proxy), 1u);  // caches this thread
    const int valid_before = rig.io->id_valid_calls;
    rig.io->getfd_errnos = {ESRCH};  // the cached pidfd's thread exited
    cr_assert_eq(rig.connect(s.get(), proxy), 1u, "one answer after the retry");
    expect_answer(rig.last(), 0);
    cr_expect_eq(rig.io->getfd_calls, 3, "one more pidfd_getfd, on a fresh pidfd");
    cr_expect_eq(rig.io->id_valid_calls, valid_before + 1, "the fresh caller was confirmed");
    cr_expect(rig.io->added.empty());
}

Test(supervisor_answer, stale_retry_is_bounded) {
    Rig rig;
    const UniqueFd s = tcp_socket();
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    cr_assert_eq(rig.connect(s.get(), proxy), 1u);
    rig.io->getfd_errnos = {ESRCH, ESRCH, ESRCH, ESRCH};
    cr_assert_eq(rig.connect(s.get(), proxy), 1u, "still one answer");
    cr_expect_eq(rig.io->getfd_calls, 3, "two attempts, no more");
    cr_expect_eq(rig.io->added.size(), 1u, "the second attempt fell back to ADDFD");
    expect_answer(rig.last(), 0);
}

Test(supervisor_answer, stale_cached_caller_before_a_denial) {
    Rig rig;
    const UniqueFd s = tcp_socket();
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    const sockaddr_in other = v4("127.0.0.2", 80);
    cr_assert_eq(rig.connect(s.get(), proxy), 1u);
    rig.io->alive_errnos = {ESRCH};  // the cached thread exited
    rig.log.clear();
    cr_assert_eq(rig.connect(s.get(), other), 1u);
    expect_answer(rig.last(), lj::jail::kConnectDeniedErrno);
    cr_expect_eq(rig.events.size(), 1u, "one event, from the second reading");
    cr_expect(rig.log == (std::vector<std::string>{"audit", "send"}));
    cr_expect(rig.io->alive_errnos.empty(), "the cached caller was checked");
}

Test(supervisor_answer, unreadable_memory_is_audited) {
    Rig rig;
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    cr_assert_eq(rig.handle(SYS_connect, 3, reinterpret_cast<std::uintptr_t>(&proxy), sizeof proxy,
                            0, dead_pid()),
                 1u);
    expect_answer(rig.last(), EPERM);
    cr_assert_eq(rig.events.size(), 1u);
    cr_expect_eq(rig.events[0].reason, "address_unreadable");
    cr_expect(rig.io->connected.empty());
}

Test(supervisor_answer, gone_caller_gets_no_answer_and_no_event) {
    Rig rig;
    rig.io->valid = false;
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    cr_expect_eq(rig.handle(SYS_connect, 3, reinterpret_cast<std::uintptr_t>(&proxy), sizeof proxy,
                            0, dead_pid()),
                 0u);
    cr_expect(rig.events.empty());
    const UniqueFd s = tcp_socket();
    cr_expect_eq(rig.connect(s.get(), proxy), 0u, "a fresh caller that left");
    cr_expect(rig.io->connected.empty());
}

Test(supervisor_answer, unreadable_address_is_efault) {
    Rig rig;
    const UniqueFd s = tcp_socket();
    cr_assert_eq(rig.handle(SYS_connect, static_cast<std::uint64_t>(s.get()), 16, 16), 1u);
    expect_answer(rig.last(), EFAULT);
    cr_expect(rig.events.empty());
}

Test(supervisor_answer, bad_length_is_einval_on_the_register_alone) {
    Rig rig;
    const sockaddr_in proxy = v4("127.0.0.1", 3128);
    cr_assert_eq(rig.connect(3, proxy, 0xffffffffULL), 1u);
    expect_answer(rig.last(), EINVAL);
    cr_assert_eq(rig.connect(3, proxy, 4096), 1u);
    expect_answer(rig.last(), EINVAL);
    cr_expect_eq(rig.io->id_valid_calls, 0);
}

Test(supervisor_answer, unix_connect_continues_with_scopes) {
    Rig rig(true, 6);
    sockaddr_storage un{};
    un.ss_family = AF_UNIX;
    cr_assert_eq(rig.connect(3, un, 12), 1u);
    expect_answer(rig.last(), 0, true);
}

// ---- socket and unknown calls ---------------------------------------------------------------

Test(supervisor_answer, refused_socket_audited_then_answered) {
    Rig rig;
    cr_assert_eq(rig.handle(SYS_socket, AF_INET, SOCK_DGRAM, 0), 1u);
    expect_answer(rig.last(), lj::jail::kSocketDeniedErrno);
    cr_assert_eq(rig.events.size(), 1u);
    cr_expect_eq(rig.events[0].event, "socket_denied");
    cr_expect(rig.events[0].destination == "socket(AF_INET, SOCK_DGRAM, 0)");
    cr_expect(rig.log == (std::vector<std::string>{"audit", "send"}));
}

Test(supervisor_answer, unknown_call_is_enosys) {
    Rig rig;
    cr_assert_eq(rig.handle(SYS_getpid, 0), 1u);
    expect_answer(rig.last(), ENOSYS);
}

Test(supervisor_answer, finished_listener_stops_the_loop) {
    Rig rig;
    cr_expect_not(rig.sup->handle_one());
    cr_expect(rig.io->sent.empty());
}

// ---- process calls --------------------------------------------------------------------------

namespace {

/// A process group of two: a leader that stands outside the jail (it is config.self) and a
/// member that is the jailed command (config.child). Both wait until killed.
struct Group {
    pid_t leader = 0;
    pid_t member = 0;

    Group() {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        leader = fork();
        if (leader == 0) {
            setpgid(0, 0);
            const pid_t m = fork();
            if (m == 0) {
                pause();
                _exit(0);
            }
            (void)!write(p[1], &m, sizeof m);
            pause();
            _exit(0);
        }
        cr_assert_eq(read(p[0], &member, sizeof member), static_cast<ssize_t>(sizeof member));
        close(p[0]);
        close(p[1]);
    }
    ~Group() {
        kill(member, SIGKILL);
        kill(leader, SIGKILL);
        waitpid(leader, nullptr, 0);
    }
};

std::uint64_t neg(pid_t pid) {
    return static_cast<std::uint64_t>(-static_cast<std::int64_t>(pid));
}

}  // namespace

Test(supervisor_answer, kill_in_and_out_of_the_jail) {
    Rig rig;  // this process is the jailed command
    cr_assert_eq(rig.handle(SYS_kill, static_cast<std::uint64_t>(getpid()), SIGUSR1), 1u);
    expect_answer(rig.last(), 0, true);
    cr_assert_eq(rig.handle(SYS_kill, 1, SIGUSR1), 1u);
    expect_answer(rig.last(), EPERM);
    cr_assert_eq(rig.handle(SYS_kill, static_cast<std::uint64_t>(-1), SIGUSR1), 1u);
    expect_answer(rig.last(), EPERM);
    cr_expect(rig.io->signals.empty(), "the kernel sends what CONTINUEs");
}

Test(supervisor_answer, kill_to_a_mixed_group_reaches_the_jail_only) {
    Group g;
    Rig rig(true, 4, g.member, g.leader);
    cr_assert_eq(rig.handle(SYS_kill, neg(g.leader), SIGUSR1), 1u);
    expect_answer(rig.last(), 0);
    cr_assert_eq(rig.io->signals.size(), 1u, "one member in the jail");
    cr_expect_eq(rig.io->signals[0].sig, SIGUSR1);
}

Test(supervisor_answer, pidfd_send_signal_on_our_copy) {
    Group g;
    Rig rig(true, 4, g.member, g.leader);
    const UniqueFd inside(static_cast<int>(syscall(SYS_pidfd_open, g.member, 0)));
    const UniqueFd outside(static_cast<int>(syscall(SYS_pidfd_open, g.leader, 0)));
    cr_assert(inside.valid() && outside.valid());
    cr_assert_eq(
        rig.handle(SYS_pidfd_send_signal, static_cast<std::uint64_t>(inside.get()), SIGUSR1), 1u);
    expect_answer(rig.last(), 0);
    cr_assert_eq(rig.io->signals.size(), 1u, "sent through the supervisor's copy");
    cr_assert_eq(
        rig.handle(SYS_pidfd_send_signal, static_cast<std::uint64_t>(outside.get()), SIGUSR1), 1u);
    expect_answer(rig.last(), EPERM);
    rig.io->getfd_errnos = {EBADF};
    cr_assert_eq(rig.handle(SYS_pidfd_send_signal, 999, SIGUSR1), 1u);
    expect_answer(rig.last(), EBADF);
    cr_expect_eq(rig.io->signals.size(), 1u);
}

Test(supervisor_answer, pidfd_send_signal_refused_without_getfd) {
    Rig rig(false, 4);
    cr_assert_eq(rig.handle(SYS_pidfd_send_signal, 3, SIGUSR1), 1u);
    expect_answer(rig.last(), EPERM);
    cr_expect_eq(rig.io->getfd_calls, 0);
}

Test(supervisor_answer, setpgid_and_f_setown) {
    Group g;
    Rig rig(true, 4, g.member, g.leader);
    cr_assert_eq(rig.handle(SYS_setpgid, 0, static_cast<std::uint64_t>(getpid())), 1u);
    expect_answer(rig.last(), 0, true);  // a group of its own
    cr_assert_eq(rig.handle(SYS_setpgid, 0, static_cast<std::uint64_t>(g.leader)), 1u);
    expect_answer(rig.last(), EPERM);  // a group with a member outside
    cr_assert_eq(rig.handle(SYS_fcntl, 3, F_SETOWN, static_cast<std::uint64_t>(g.member)), 1u);
    expect_answer(rig.last(), 0, true);
    cr_assert_eq(rig.handle(SYS_fcntl, 3, F_SETOWN, static_cast<std::uint64_t>(g.leader)), 1u);
    expect_answer(rig.last(), EPERM);
    cr_assert_eq(rig.handle(SYS_fcntl, 3, F_SETOWN, neg(g.leader)), 1u);
    expect_answer(rig.last(), EPERM);
}

Test(supervisor_answer, prlimit_on_processes_outside) {
    Rig rig;
    cr_assert_eq(rig.handle(SYS_prlimit64, 1, RLIMIT_NOFILE, 0x1000), 1u);
    expect_answer(rig.last(), EPERM);
    cr_assert_eq(
        rig.handle(SYS_prlimit64, static_cast<std::uint64_t>(getpid()), RLIMIT_NOFILE, 0x1000), 1u);
    expect_answer(rig.last(), 0, true);
}

Test(supervisor_answer, process_call_of_a_gone_caller_is_not_answered) {
    Rig rig;
    rig.io->valid = false;
    cr_expect_eq(rig.handle(SYS_kill, 1, SIGUSR1), 0u);
    cr_expect_eq(rig.handle(SYS_pidfd_send_signal, 3, SIGUSR1, 0, 0, dead_pid()), 0u);
}
