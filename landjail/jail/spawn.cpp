// SPDX-License-Identifier: Apache-2.0
#include "landjail/jail/spawn.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <utility>

#include "landjail/jail/uapi/landlock.h"

namespace lj::jail {
namespace {

constexpr std::size_t kStackSize = 512 * 1024;

enum class Step : std::int32_t {
    Ready = 0,
    Pdeathsig,
    Capabilities,
    NoNewPrivs,
    LandlockRuleset,
    LandlockRule,
    LandlockRestrict,
    Seccomp,
    Exec,
};

const char* step_text(Step s) {
    switch (s) {
        case Step::Ready:
            return "ready";
        case Step::Pdeathsig:
            return "prctl(PR_SET_PDEATHSIG)";
        case Step::Capabilities:
            return "dropping CAP_SYS_PTRACE";
        case Step::NoNewPrivs:
            return "prctl(PR_SET_NO_NEW_PRIVS)";
        case Step::LandlockRuleset:
            return "landlock_create_ruleset";
        case Step::LandlockRule:
            return "landlock_add_rule";
        case Step::LandlockRestrict:
            return "landlock_restrict_self";
        case Step::Seccomp:
            return "seccomp(SECCOMP_SET_MODE_FILTER)";
        case Step::Exec:
            return "execve";
    }
    return "?";
}

struct Message {
    Step step;
    std::int32_t err;
    std::int32_t value;  ///< Ready: the listener fd (-1 when none)
};

/// Everything the child needs, prepared by the parent (the child only makes syscalls).
struct ChildArgs {
    const ChildSpec* spec;
    std::vector<char*> argv;
    std::vector<char*> envp;
    int report = -1;  ///< write end
    pid_t parent = 0;
};

[[noreturn]] void fail(const ChildArgs& a, Step step, int err) {
    const Message m{step, err, -1};
    (void)!write(a.report, &m, sizeof m);
    _exit(step == Step::Exec ? (err == ENOENT ? 127 : 126) : 125);
}

std::uint64_t fs_rights(int abi) {
    std::uint64_t r = LJ_LANDLOCK_ACCESS_FS_ABI1;
    if (abi >= 2)
        r |= LJ_LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        r |= LJ_LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        r |= LJ_LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return r;
}

/// Landlock per DESIGN §3. With the supervisor, CONNECT_TCP is handled and no port is
/// allowed; weak mode allows the proxy port. Files stay unrestricted: on ABI 1-3 the domain
/// handles file access only so that it exists (ptrace isolation) and allows all of it.
void apply_landlock(const ChildArgs& a) {
    const Plan& plan = a.spec->plan;
    const int abi = plan.landlock_abi;
    lj_landlock_ruleset_attr attr{};
    std::size_t size = sizeof(std::uint64_t);
    if (abi < 4) {
        attr.handled_access_fs = fs_rights(abi);
    } else {
        attr.handled_access_net = LJ_LANDLOCK_ACCESS_NET_CONNECT_TCP;
        size = 2 * sizeof(std::uint64_t);
    }
    if (abi >= 6) {
        attr.scoped = LJ_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LJ_LANDLOCK_SCOPE_SIGNAL;
        size = sizeof attr;
    }
    const UniqueFd ruleset_fd(
        static_cast<int>(syscall(__NR_landlock_create_ruleset, &attr, size, 0)));
    const int ruleset = ruleset_fd.get();
    if (ruleset < 0) {
        fail(a, Step::LandlockRuleset, errno);
    }
    if (abi < 4) {
        const UniqueFd root(open("/", O_PATH | O_CLOEXEC));
        lj_landlock_path_beneath_attr beneath{attr.handled_access_fs, root.get()};
        if (!root.valid() || syscall(__NR_landlock_add_rule, ruleset, LJ_LANDLOCK_RULE_PATH_BENEATH,
                                     &beneath, 0) != 0) {
            fail(a, Step::LandlockRule, errno);
        }
    }
    if (plan.weak) {
        lj_landlock_net_port_attr port{LJ_LANDLOCK_ACCESS_NET_CONNECT_TCP, a.spec->proxy_port};
        if (syscall(__NR_landlock_add_rule, ruleset, LJ_LANDLOCK_RULE_NET_PORT, &port, 0) != 0) {
            fail(a, Step::LandlockRule, errno);
        }
    }
    if (syscall(__NR_landlock_restrict_self, ruleset, 0) != 0) {
        fail(a, Step::LandlockRestrict, errno);
    }
}

/// Root without Landlock: CAP_SYS_PTRACE would open the supervisor's memory.
void drop_ptrace_capability(const ChildArgs& a) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &hdr, data) != 0) {
        fail(a, Step::Capabilities, errno);
    }
    const unsigned bit = 1U << (CAP_SYS_PTRACE % 32);
    const int word = CAP_SYS_PTRACE / 32;
    if (!(data[word].permitted & bit) && !(data[word].effective & bit)) {
        return;
    }
    if (prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) != 0 && errno != EINVAL) {
        fail(a, Step::Capabilities, errno);
    }
    data[word].permitted &= ~bit;
    data[word].effective &= ~bit;
    data[word].inheritable &= ~bit;
    if (syscall(SYS_capset, &hdr, data) != 0) {
        fail(a, Step::Capabilities, errno);
    }
}

int child_main(void* arg) {
    const auto& a = *static_cast<const ChildArgs*>(arg);
    const ChildSpec& spec = *a.spec;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
        fail(a, Step::Pdeathsig, errno);
    }
    if (getppid() != a.parent) {
        _exit(125);  // the supervisor is already gone: never run unsupervised
    }
    // The parent blocks the signals it reads from a signalfd; the command gets defaults.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            signal(sig, SIG_DFL);
        }
    }
    if (spec.plan.landlock_abi == 0 && spec.plan.supervise) {
        drop_ptrace_capability(a);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        fail(a, Step::NoNewPrivs, errno);
    }
    if (spec.plan.landlock_abi > 0) {
        apply_landlock(a);
    }
    sock_fprog prog{static_cast<unsigned short>(spec.filter.code.size()),
                    const_cast<sock_filter*>(spec.filter.code.data())};  // NOLINT: kernel API
    long listener = -1;
    if (spec.filter.notify) {
        listener = syscall(
            SYS_seccomp, SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
        if (listener < 0 && errno == EINVAL) {  // before 5.19
            listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                               SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        }
    } else {
        listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
        listener = listener == 0 ? -1 : -2;
    }
    if (listener < -1 || (spec.filter.notify && listener < 0)) {
        fail(a, Step::Seccomp, errno);
    }
    // The listener is in the shared table, close-on-exec: the parent keeps it, and exec
    // closes it in the command's private copy. Nothing before exec is trapped.
    const Message ready{Step::Ready, 0, static_cast<std::int32_t>(listener)};
    (void)!write(a.report, &ready, sizeof ready);
    execve(spec.path.c_str(), a.argv.data(), a.envp.data());
    fail(a, Step::Exec, errno);
}

}  // namespace

Result<Child> spawn_child(const ChildSpec& spec, std::optional<ChildFailure>* failure) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        return make_error(std::string("pipe: ") + std::strerror(errno));
    }
    Child child;
    child.report.reset(pipefd[0]);
    UniqueFd report_write(pipefd[1]);

    ChildArgs args;
    args.spec = &spec;
    args.report = report_write.get();
    args.parent = getpid();
    std::vector<std::string> argv = spec.argv;
    std::vector<std::string> env = spec.env;
    for (auto& s : argv) args.argv.push_back(s.data());
    args.argv.push_back(nullptr);
    for (auto& s : env) args.envp.push_back(s.data());
    args.envp.push_back(nullptr);

    void* stack = mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        return make_error(std::string("mmap: ") + std::strerror(errno));
    }
    const pid_t pid =
        clone(child_main, static_cast<char*>(stack) + kStackSize, CLONE_FILES | SIGCHLD, &args);
    const int clone_err = errno;
    munmap(stack, kStackSize);  // the child has its own copy of the memory
    if (pid < 0) {
        return make_error(std::string("clone: ") + std::strerror(clone_err));
    }
    child.pid = pid;
    // The write end stays open in our table (shared with the child until its exec), so a
    // child that dies without a word is noticed through its pidfd, not by EOF.
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    Message m{};
    ssize_t got = -1;
    for (;;) {
        pollfd fds[2] = {{child.report.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
        const int rc = poll(fds, pidfd.valid() ? 2 : 1, -1);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (fds[0].revents & POLLIN) {
            got = read(child.report.get(), &m, sizeof m);
            break;
        }
        if (rc < 0 || (fds[1].revents & POLLIN)) {
            break;
        }
    }
    if (got != static_cast<ssize_t>(sizeof m)) {
        int status = 0;
        waitpid(pid, &status, 0);
        const std::string how = WIFSIGNALED(status) ? std::string(strsignal(WTERMSIG(status)))
                                                    : "exit " + std::to_string(WEXITSTATUS(status));
        return make_error("the child died before it was jailed (" + how + ")");
    }
    if (m.step != Step::Ready) {
        ChildFailure f{step_text(m.step), m.err,
                       m.step == Step::Exec ? (m.err == ENOENT ? 127 : 126) : 125};
        if (failure) {
            *failure = f;
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return make_error(f.step + ": " + std::strerror(f.err));
    }
    child.listener.reset(m.value);
    child.report_write = std::move(report_write);
    return child;
}

std::optional<ChildFailure> read_failure(int report_fd) {
    const int flags = fcntl(report_fd, F_GETFL);
    fcntl(report_fd, F_SETFL, flags | O_NONBLOCK);
    Message m{};
    if (read(report_fd, &m, sizeof m) != static_cast<ssize_t>(sizeof m) || m.step == Step::Ready) {
        return std::nullopt;
    }
    return ChildFailure{step_text(m.step), m.err,
                        m.step == Step::Exec ? (m.err == ENOENT ? 127 : 126) : 125};
}

namespace {

/// 0 when `p` is an executable regular file, else the errno execve would most likely give
/// (EISDIR stands for a directory, which execve reports as EACCES).
int executable_error(const std::string& p) {
    struct stat st {};
    if (stat(p.c_str(), &st) != 0) {
        return errno;
    }
    if (S_ISDIR(st.st_mode)) {
        return EISDIR;
    }
    return access(p.c_str(), X_OK) == 0 ? 0 : EACCES;
}

std::string current_directory() {
    char buf[4096];
    return getcwd(buf, sizeof buf) ? std::string(buf) : std::string(".");
}

/// NAME given with a '/': why it cannot run, and its exit status (GNU env's: 127 when it
/// does not exist, 126 otherwise).
ResolvedCommand explain_path(const std::string& name, int err) {
    const bool relative = name.front() != '/';
    switch (err) {
        case ENOENT:
            return {"", 127,
                    name + ": no such file" +
                        (relative ? " (relative to " + current_directory() + ")" : "")};
        case EISDIR:
            return {"", 126, name + ": not executable: it is a directory, not a program"};
        case EACCES:
            if (access(name.c_str(), F_OK) == 0) {
                return {"", 126, name + ": not executable (chmod +x " + name + " to run it)"};
            }
            break;
        default:
            break;
    }
    return {"", 126, name + ": " + std::strerror(err)};
}

/// " (the NAME in the current directory runs as ./NAME)" when there is one.
std::string current_directory_hint(const std::string& name) {
    if (executable_error(name) != 0) {
        return "";
    }
    return " (the " + name + " in the current directory runs as ./" + name + ")";
}

/// Whether `a` becomes `b` by at most one edit: a character changed, added or removed, or
/// two adjacent characters swapped.
bool at_most_one_edit(std::string_view a, std::string_view b) {
    if (a.size() > b.size()) {
        std::swap(a, b);
    }
    std::size_t i = 0;
    while (i < a.size() && a[i] == b[i]) {
        ++i;
    }
    if (i == a.size()) {
        return b.size() - a.size() <= 1;
    }
    if (a.size() < b.size()) {
        return a.substr(i) == b.substr(i + 1);
    }
    return a.substr(i + 1) == b.substr(i + 1) ||
           (i + 1 < a.size() && a[i] == b[i + 1] && a[i + 1] == b[i] &&
            a.substr(i + 2) == b.substr(i + 2));
}

/// " (did you mean the subcommand 'landjail check'?)" when a command that was not found is
/// a subcommand's name, or one typo away from one (`landjail chek`).
std::string subcommand_hint(const std::string& name) {
    for (const char* sub : {"check", "explain", "doctor"}) {
        if (name.size() >= 4 && at_most_one_edit(name, sub)) {
            return " (did you mean the subcommand 'landjail " + std::string(sub) + "'?)";
        }
    }
    return "";
}

}  // namespace

ResolvedCommand resolve_command(const std::string& name, const std::string& path_env) {
    if (name.empty()) {
        return {"", 127, "empty command name: the first word after -- is the program to run"};
    }
    if (name.find('/') != std::string::npos) {
        const int err = executable_error(name);
        return err == 0 ? ResolvedCommand{name, 0, ""} : explain_path(name, err);
    }
    const std::string path = path_env.empty() ? "/usr/local/bin:/usr/bin:/bin" : path_env;
    std::string unexecutable;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find(':', start);
        if (end == std::string::npos)
            end = path.size();
        std::string dir = path.substr(start, end - start);
        if (dir.empty())
            dir = ".";
        const std::string candidate = dir + "/" + name;
        const int err = executable_error(candidate);
        if (err == 0) {
            return {candidate, 0, ""};
        }
        if ((err == EACCES || err == EISDIR) && unexecutable.empty()) {  // as execvp: 126
            unexecutable = candidate;
        }
        start = end + 1;
    }
    if (!unexecutable.empty()) {
        return {"", 126,
                name + ": found in PATH but not executable (" + unexecutable +
                    (executable_error(unexecutable) == EISDIR ? " is a directory)" : ")")};
    }
    return {"", 127,
            name + ": command not found" + current_directory_hint(name) + subcommand_hint(name)};
}

std::string describe_failure(const ChildFailure& f, const std::string& path) {
    if (f.step != step_text(Step::Exec)) {
        return f.step + ": " + std::strerror(f.err);
    }
    if (f.err == ENOEXEC) {
        return "not a program this system can run (execve: " + std::string(std::strerror(f.err)) +
               ")";
    }
    if (f.err == ENOENT && access(path.c_str(), F_OK) == 0) {
        // The file is there: what is missing is the interpreter of its #! line (or, for a
        // binary, its dynamic loader).
        char head[256] = {};
        const UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
        const ssize_t n = fd.valid() ? read(fd.get(), head, sizeof head - 1) : -1;
        if (n > 2 && head[0] == '#' && head[1] == '!') {
            std::string line(head + 2, static_cast<std::size_t>(n - 2));
            line = line.substr(0, line.find('\n'));
            const std::size_t b = line.find_first_not_of(" \t");
            const std::string interp =
                b == std::string::npos ? "" : line.substr(b, line.find_first_of(" \t", b) - b);
            return "its interpreter '" + interp +
                   "' (named on its #! line) was not found: install it or fix the #! line";
        }
        return "execve: No such file or directory (its dynamic loader is missing: it was built "
               "for another system)";
    }
    return "execve: " + std::string(std::strerror(f.err));
}

/// Whether a process of the jail is still alive: as the subreaper, every one of them that
/// outlived its parent is our child, like the command and the proxy.
bool jail_processes_left(pid_t proxy) {
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
        std::ifstream in(task.path() / "children");
        pid_t pid = 0;
        while (in >> pid) {
            if (pid != proxy) {
                return true;
            }
        }
    }
    return false;
}

}  // namespace lj::jail
