// SPDX-License-Identifier: Apache-2.0
#include "landjail/proxy_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "landjail/child.hpp"

namespace lj::jail {
namespace {

bool executable(const std::string& p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return std::string("was killed by ") + strsignal(WTERMSIG(status));
    }
    return "stopped";
}

}  // namespace

std::string own_directory() {
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        return "";
    }
    const std::string exe(self, static_cast<std::size_t>(n));
    return exe.substr(0, exe.rfind('/'));
}

Result<std::string> find_proxy_binary() {
    if (const char* env = std::getenv("LANDJAIL_PROXY"); env && *env) {
        if (!executable(env)) {
            return make_error(std::string("LANDJAIL_PROXY=") + env + ": not an executable file");
        }
        return std::string(env);
    }
    if (const std::string dir = own_directory();
        !dir.empty() && executable(dir + "/landjail-proxy")) {
        return dir + "/landjail-proxy";
    }
    const char* path = std::getenv("PATH");
    if (auto found = resolve_command("landjail-proxy", path ? path : ""); found.exit_status == 0) {
        return found.path;
    }
    return make_error(
        "landjail-proxy not found (next to landjail, in PATH, or $LANDJAIL_PROXY); use "
        "--proxy-addr to use one that is already running");
}

Result<ProxyProcess> start_proxy(const std::string& binary, const std::vector<std::string>& args,
                                 int event_fd, int clients_fd) {
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) {
        return make_error(std::string("pipe: ") + std::strerror(errno));
    }
    UniqueFd ready_read(ready[0]);
    UniqueFd ready_write(ready[1]);
    std::vector<std::string> argv_s = {binary};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    argv_s.emplace_back("--ready-fd");
    argv_s.emplace_back("3");
    if (event_fd >= 0) {
        argv_s.emplace_back("--event-fd");
        argv_s.emplace_back("4");
    }
    if (clients_fd >= 0) {
        argv_s.emplace_back("--clients-fd");
        argv_s.emplace_back("5");
    }
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        return make_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
        if (getppid() != parent) {
            _exit(125);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        // fd 3 is the ready pipe, fd 4 the jail's events, fd 5 the client table; dup2 clears
        // close-on-exec. All are first moved above 5, so that none overwrites another.
        const int ready_fd = fcntl(ready_write.get(), F_DUPFD_CLOEXEC, 10);
        const int events = event_fd >= 0 ? fcntl(event_fd, F_DUPFD_CLOEXEC, 10) : -1;
        const int clients = clients_fd >= 0 ? fcntl(clients_fd, F_DUPFD_CLOEXEC, 10) : -1;
        if (ready_fd < 0 || dup2(ready_fd, 3) < 0 ||
            (event_fd >= 0 && (events < 0 || dup2(events, 4) < 0)) ||
            (clients_fd >= 0 && (clients < 0 || dup2(clients, 5) < 0))) {
            _exit(125);
        }
        const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
        }
        execv(binary.c_str(), argv.data());
        _exit(127);
    }
    ready_write.reset();
    ProxyProcess proc;
    proc.pid = pid;
    proc.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    proc.ready = std::move(ready_read);
    return proc;
}

Result<bool> wait_ready(ProxyProcess& proc, std::chrono::milliseconds timeout) {
    const int fd = proc.ready.get();
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            stop_proxy(proc, std::chrono::milliseconds(0));
            proc.ready.reset();
            return make_error("landjail-proxy did not report ready within " +
                              std::to_string(timeout.count() / 1000) + " s");
        }
        pollfd p{fd, POLLIN, 0};
        const int rc = poll(&p, 1, static_cast<int>(left.count()));
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            continue;
        }
        char buf[256];
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            line.append(buf, static_cast<std::size_t>(n));
            if (line.find('\n') != std::string::npos) {
                proc.address = line.substr(0, line.find('\n'));
                proc.ready.reset();
                return true;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        // EOF without an address: the proxy failed; its own message is on stderr already.
        int status = 0;
        waitpid(proc.pid, &status, 0);
        proc.pid = -1;
        proc.ready.reset();
        return make_error("landjail-proxy " + describe_status(status) +
                          " before it was ready (see its message above)");
    }
}

int stop_proxy(ProxyProcess& proxy, std::chrono::milliseconds grace) {
    if (proxy.pid <= 0) {
        return -1;
    }
    kill(proxy.pid, SIGTERM);
    if (proxy.pidfd.valid()) {
        pollfd p{proxy.pidfd.get(), POLLIN, 0};
        int rc = -1;
        do {
            rc = poll(&p, 1, static_cast<int>(grace.count()));
        } while (rc < 0 && errno == EINTR);
        if (rc == 0) {
            kill(proxy.pid, SIGKILL);
        }
    }
    int status = 0;
    while (waitpid(proxy.pid, &status, 0) < 0 && errno == EINTR) {
    }
    proxy.pid = -1;
    return status;
}

}  // namespace lj::jail
