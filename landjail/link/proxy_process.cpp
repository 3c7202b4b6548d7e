// SPDX-License-Identifier: Apache-2.0
#include "landjail/link/proxy_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "landjail/jail/spawn.hpp"
#include "proxy/audit/auditor.hpp"
#include "proxy/base/ca_file.hpp"
#include "proxy/base/diag.hpp"
#include "proxy/base/resolve.hpp"

namespace lj::jail {
namespace {

bool executable(const std::string& p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
}

}  // namespace

std::string describe_status(int status) {
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
               strsignal(WTERMSIG(status)) + ")";
    }
    return "stopped";
}

namespace {

/// Why the proxy stopped before it was ready. Status 1 is landjail-proxy's "could not start"
/// (its message on stderr says why); 2 is a usage error, which with arguments landjail
/// validated means a landjail-proxy of another version; 127 is from start_proxy's child.
Error not_ready(ProxyProcess& proc, int status) {
    const std::string who = proc.binary + " ";
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
        proc.explained = true;
        return make_error(who + "exited with status 1 before it was ready");
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
        return make_error(who +
                          "refused the options landjail gave it: is it the landjail-proxy "
                          "of landjail " LJ_VERSION "? (landjail-proxy --version)");
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        return make_error(who + "could not be executed");
    }
    return make_error(who + describe_status(status) + " before it was ready");
}

/// How the user wrote a setting: "--proxy-port 80", "PROXY_PORT=80" or
/// "config.yaml:3:13: proxy_port 80".
std::string named(const std::string& origin, const std::string& key, const std::string& value) {
    if (origin.rfind("--", 0) == 0) {
        return origin + " " + value;
    }
    if (!origin.empty() && origin.front() >= 'A' && origin.front() <= 'Z' &&
        origin.find_first_of("/:. ") == std::string::npos) {
        return origin + "=" + value;
    }
    return origin + ": " + key + " " + value;
}

/// Whether our proxy could listen on 127.0.0.1:`port` (it binds the same way, with
/// SO_REUSEADDR). A port taken in between is reported by the proxy itself.
Status port_is_free(std::uint16_t port) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd.valid() && setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
        bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) {
        return {};
    }
    const int err = errno;
    const std::string where = "127.0.0.1:" + std::to_string(port);
    if (err == EADDRINUSE) {
        return make_error("another program is already listening on " + where +
                          ": choose another port, or 0 for a free one");
    }
    return make_error("cannot listen on " + where + ": " + std::strerror(err) +
                      (err == EACCES ? " (ports below 1024 need privileges: choose a port from "
                                       "1024 up, or 0 for a free one)"
                                     : ""));
}

}  // namespace

std::string command_basename(const CliOptions& cli) {
    return cli.args.empty() ? std::string()
                            : std::filesystem::path(cli.args.front()).filename().string();
}

std::vector<std::string> proxy_arguments(const CliOptions& cli, const policy::Settings& s,
                                         const proxy::ConfigChoice& config,
                                         const std::string& ca_dir, const std::string& session_id) {
    // The shared options as given, with what landjail resolved in their place: the profile
    // files it read, the audit file (LOG_DIR/audit.jsonl) and the CA directory.
    proxy::SharedOptions o = cli;
    o.flags.profiles.clear();
    for (const auto& [name, path] : config.profiles) {
        o.flags.profiles.push_back(std::filesystem::absolute(path).string());
    }
    // disable_audit_logs turns off only the Coder agent's copy: the trail's sinks stay.
    o.flags.disable_audit_logs = s.disable_audit_logs.value;
    if (s.audit_file) {
        o.flags.audit_log = s.audit_file->value;
    }
    o.flags.ca_dir = ca_dir;
    std::vector<std::string> a = {"--listen", "127.0.0.1:" + std::to_string(s.proxy_port.value),
                                  "--session-id", session_id};
    if (const std::string name = command_basename(cli); !name.empty()) {
        a.insert(a.end(), {"--command-name", name});
    }
    const std::vector<std::string> shared = proxy::forward_shared(o);
    a.insert(a.end(), shared.begin(), shared.end());
    return a;
}

Status check_proxy_inputs(const policy::Settings& s, const CliOptions* cli) {
    Status ok;
    if (s.audit_file) {
        const std::string& origin = s.audit_file->origin;
        const bool from_log_dir = origin.rfind("log_dir", 0) == 0 && s.log_dir;
        // A log_dir that does not exist yet is created (launch_proxy); it is checked then.
        if (auto checked = proxy::check_audit_file(s.audit_file->value, from_log_dir); !checked) {
            ok = make_error((from_log_dir ? named(s.log_dir->origin, "log_dir", s.log_dir->value)
                                          : named(origin, "audit.file", s.audit_file->value)) +
                            ": " + checked.error().message);
        }
    }
    if (cli) {  // what only our own proxy uses
        if (auto parsed = proxy::resolve_overrides(cli->resolve); ok && !parsed) {
            ok = parsed.error();
        }
        const auto& file_ca = s.tls.upstream_ca;
        if (ok && (cli->upstream_ca || file_ca)) {
            const std::string path = cli->upstream_ca ? *cli->upstream_ca : file_ca->value;
            const std::string origin = cli->upstream_ca ? "--upstream-ca" : file_ca->origin;
            if (auto checked = proxy::check_ca_file(path); !checked) {
                ok = make_error(named(origin, "tls.upstream_ca", path) + ": " +
                                checked.error().message);
            }
        }
        if (ok && s.proxy_port.value != 0) {
            if (auto free = port_is_free(s.proxy_port.value); !free) {
                ok = make_error(
                    named(s.proxy_port.origin, "proxy_port", std::to_string(s.proxy_port.value)) +
                    ": " + free.error().message);
            }
        }
    }
    return ok;
}

/// Whether something accepts connections at `addr` (the proxy of --proxy-addr), within 5 s.
Status probe_proxy(const InetAddr& addr) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (addr.family == AF_INET) {
        auto& in = reinterpret_cast<sockaddr_in&>(ss);
        in.sin_family = AF_INET;
        in.sin_port = htons(addr.port);
        std::memcpy(&in.sin_addr, addr.addr, 4);
        len = sizeof in;
    } else {
        auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(addr.port);
        std::memcpy(&in6.sin6_addr, addr.addr, 16);
        in6.sin6_scope_id = addr.scope;
        len = sizeof in6;
    }
    UniqueFd fd(socket(addr.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    int err = fd.valid() ? 0 : errno;
    if (fd.valid() && connect(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            pollfd p{fd.get(), POLLOUT, 0};
            socklen_t elen = sizeof err;
            if (poll(&p, 1, 5000) != 1 ||
                getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
                err = ETIMEDOUT;
            }
        }
    }
    if (err == 0) {
        return {};
    }
    return make_error("no proxy answers there (" + std::string(std::strerror(err)) +
                      "): start one with 'landjail-proxy --listen " + addr.text() +
                      "', or leave out --proxy-addr and landjail starts its own");
}

Result<std::string> find_proxy_binary() {
    if (const char* env = std::getenv("LANDJAIL_PROXY"); env && *env) {
        if (!executable(env)) {
            return make_error(std::string("LANDJAIL_PROXY=") + env +
                              ": not an executable file; set it to the landjail-proxy program, "
                              "or unset it to use the one installed next to landjail");
        }
        return std::string(env);
    }
    const std::string dir = proxy::own_directory();
    if (!dir.empty() && executable(dir + "/landjail-proxy")) {
        return dir + "/landjail-proxy";
    }
    const char* path = std::getenv("PATH");
    if (auto found = resolve_command("landjail-proxy", path ? path : ""); found.exit_status == 0) {
        return found.path;
    }
    const std::string next_to = dir.empty() ? "next to landjail" : dir + "/landjail-proxy";
    return make_error("landjail-proxy not found (looked for " + next_to +
                      " and in PATH=" + (path ? path : "") +
                      "): install it next to landjail, set LANDJAIL_PROXY=/path/to/"
                      "landjail-proxy, or use --proxy-addr HOST:PORT to use one that is running");
}

Result<ProxyProcess> start_proxy(const std::string& binary, const std::vector<std::string>& args,
                                 int event_fd, int clients_fd, int stderr_fd) {
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
        signal(SIGPIPE, SIG_DFL);  // landjail ignores it; the proxy decides for itself
        if (stderr_fd >= 0 && dup2(stderr_fd, STDERR_FILENO) < 0) {
            _exit(125);
        }
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
    proc.binary = binary;
    proc.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    proc.ready = std::move(ready_read);
    return proc;
}

Status wait_ready(ProxyProcess& proc, std::chrono::milliseconds timeout) {
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
                return {};
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        // EOF without an address: the proxy stopped.
        int status = 0;
        waitpid(proc.pid, &status, 0);
        proc.pid = -1;
        proc.ready.reset();
        return not_ready(proc, status);
    }
}

int stop_proxy(ProxyProcess& proxy, std::chrono::milliseconds grace,
               std::optional<std::chrono::milliseconds> cut_after) {
    if (proxy.pid <= 0) {
        return -1;
    }
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    kill(proxy.pid, SIGTERM);
    if (proxy.pidfd.valid()) {
        // landjail-proxy(1): a first SIGTERM drains, a later one closes the connections at
        // once. Two signals sent before the proxy handled the first are one, so the later
        // one is repeated until it exits.
        const auto step = std::chrono::milliseconds(cut_after ? 50 : grace.count());
        for (;;) {
            const auto waited = Clock::now() - start;
            if (waited >= grace) {
                kill(proxy.pid, SIGKILL);
                break;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(grace - waited);
            pollfd p{proxy.pidfd.get(), POLLIN, 0};
            const int rc = poll(&p, 1, static_cast<int>(std::min(step, left).count()));
            if (rc > 0) {
                break;
            }
            if (cut_after && Clock::now() - start >= *cut_after) {
                kill(proxy.pid, SIGTERM);
            }
        }
    }
    int status = 0;
    while (waitpid(proxy.pid, &status, 0) < 0 && errno == EINTR) {
    }
    proxy.pid = -1;
    return status;
}

namespace {
/// How many held-back denial lines are shown after the command has exited.
constexpr std::size_t kDenialLinesShown = 20;
}  // namespace

void relay_proxy_log(int fd, off_t* offset, bool after_exit) {
    std::string text;
    char buf[65536];
    for (;;) {
        const ssize_t n = pread(fd, buf, sizeof buf, *offset);
        if (n <= 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
        *offset += n;
    }
    std::string others;
    std::vector<std::string> denials;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        end = end == std::string::npos ? text.size() : end + 1;
        std::string line = text.substr(start, end - start);
        start = end;
        if (line.rfind("landjail_", 0) == 0) {
            denials.push_back(std::move(line));
        } else {
            others += line;
        }
    }
    std::cerr << others;
    if (!after_exit || denials.empty()) {
        return;
    }
    diag::note(
        std::to_string(denials.size()) + (denials.size() == 1 ? " request was" : " requests were") +
        " denied while the command ran on this terminal" +
        (denials.size() > kDenialLinesShown
             ? " (the last " + std::to_string(kDenialLinesShown) + " below; all in the audit trail)"
             : "") +
        ":");
    const std::size_t first =
        denials.size() > kDenialLinesShown ? denials.size() - kDenialLinesShown : 0;
    for (std::size_t i = first; i < denials.size(); ++i) {
        std::cerr << "  " << denials[i];
    }
}

}  // namespace lj::jail
