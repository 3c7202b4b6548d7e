// SPDX-License-Identifier: Apache-2.0
// `landjail [OPTIONS] -- COMMAND` and `landjail doctor`: start the proxy, start the command
// in the jail, supervise it, stop the proxy, exit with the command's status (DESIGN §8).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "landjail/jail/environment.hpp"
#include "landjail/jail/inherited.hpp"
#include "landjail/jail/protection.hpp"
#include "landjail/jail/seccomp_filter.hpp"
#include "landjail/jail/spawn.hpp"
#include "landjail/link/proxy_link.hpp"
#include "landjail/subcommands.hpp"
#include "landjail/supervisor/procfs.hpp"
#include "landjail/supervisor/supervisor.hpp"
#include "proxy/audit/auditor.hpp"
#include "proxy/audit/jail_events.hpp"
#include "proxy/base/config_loader.hpp"
#include "proxy/base/diag.hpp"
#include "shim/core.h"

extern char** environ;

namespace lj::jail {
namespace {

/// Signals we pass on to the command. A signal the terminal sent (SI_KERNEL) already reached
/// the command, which shares our foreground process group: only others are forwarded.
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

std::string env_value(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

int status_to_exit(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return kExitFailed;
}

/// Removes the session directory on every way out of run_command.
struct SessionDir {
    std::string path;
    ~SessionDir() {
        if (!path.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(path, ec);
        }
    }
};

Result<Requirements> requirements_of(const CliOptions& cli) {
    return cli.require ? parse_requirements(*cli.require) : Result<Requirements>(Requirements{});
}

/// One run of `landjail -- COMMAND`: decide → start the proxy link → prepare → spawn →
/// supervise → finish.
class Jail {
  public:
    explicit Jail(const CliOptions& cli) : cli_(cli) {}
    int run();

  private:
    int start();
    int decide();
    int close_inherited();
    void audit_inherited(const SupervisorConfig& sc) const;
    int make_session_dir();
    int start_link();
    int prepare(ChildSpec& spec);
    int spawn(const ChildSpec& spec);
    void start_supervisor();
    int supervise();
    void reap(int* child_status, bool* child_done);
    int finish(int exit_status);

    const CliOptions& cli_;
    std::optional<policy::Settings> settings_;
    proxy::ConfigChoice config_;  ///< where the settings came from (the profiles' files)
    std::string command_path_;
    Plan plan_;
    std::vector<InheritedFd> closed_;  ///< inherited descriptors closed (close_inherited)
    SessionDir session_;
    LinkSpec link_spec_;               ///< what the link reads (session id, CA directory, …)
    std::unique_ptr<ProxyLink> link_;  ///< our landjail-proxy, or the one at --proxy-addr
    InetAddr proxy_addr_;
    Child child_;
    // Shared with the supervisor thread, which is never joined: it blocks in the kernel
    // until the process exits, so what it uses must outlive the Jail.
    std::shared_ptr<Supervisor> supervisor_;
    UniqueFd signals_;
};

int Jail::run() {
    const int rc = start();
    if (rc != 0) {
        return finish(rc);
    }
    return finish(supervise());
}

int Jail::start() {
    if (cli_.args.empty()) {
        diag::error(
            "no command given: landjail [OPTIONS] -- COMMAND [ARG...] (see landjail --help)");
        return kExitFailed;
    }
    // Before any thread exists (the audit sinks start some): the signals we read from a
    // signalfd stay blocked in every thread, so that none takes SIGCHLD from it.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    for (const int s : kForwarded) sigaddset(&mask, s);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signals_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    ChildSpec spec;
    int rc = 0;
    if ((rc = decide()) != 0 || (rc = close_inherited()) != 0 || (rc = make_session_dir()) != 0 ||
        (rc = start_link()) != 0 || (rc = prepare(spec)) != 0 || (rc = spawn(spec)) != 0) {
        return rc;
    }
    start_supervisor();
    return 0;
}

/// The settings, the protection plan (with its warnings) and the command's path.
int Jail::decide() {
    auto settings = proxy::load_settings(cli_.config, cli_.flags, &config_);
    if (!settings) {
        diag::error(settings.error().what());
        return kExitFailed;
    }
    settings_ = std::move(*settings);
    diag::set_level(settings_->log_level.value);  // --log-level error: errors only
    if (auto strict = check_strict(cli_, *settings_); !strict) {
        diag::error(strict.error().message);
        return kExitFailed;
    }
    for (const std::string& w : settings_->jail_warnings) {
        diag::warn(w);
    }
    auto req = requirements_of(cli_);
    if (!req) {
        diag::error(req.error().message);
        return kExitFailed;
    }
    auto plan = plan_protection(probe_host(false), *req, cli_.allow_weak);
    if (!plan) {
        diag::error(plan.error().message);
        return kExitFailed;
    }
    plan_ = *plan;
    link_spec_ = {&cli_, &*settings_, &config_, &plan_, {}, {}, {}};
    link_ = make_proxy_link(link_spec_);
    if (auto ok = link_->check(); !ok) {
        diag::error(ok.error().message);
        return kExitFailed;
    }
    // A degraded level is how this host is (Docker's default profile: on every start); it is
    // a fact for `landjail doctor` and --log-level info, not a warning each time. The weak
    // level (--allow-weak) stays a warning.
    for (const std::string& lost : plan_.lost) {
        const std::string line = "protection is " + std::string(plan_.weak ? "weak" : "degraded") +
                                 " (level " + std::to_string(plan_.level) + "): " + lost;
        plan_.weak ? diag::warn(line) : diag::info(line);
    }
    const ResolvedCommand cmd = resolve_command(cli_.args.front(), env_value("PATH"));
    if (cmd.exit_status != 0) {
        diag::error(cmd.error);
        return cmd.exit_status;
    }
    command_path_ = cmd.path;
    return 0;
}

/// Inherited descriptors that lead out of the jail (find_inherited) are closed before the
/// proxy and the command start, unless --keep-fd names them; such a descriptor on standard
/// input, output or error is an error (closing it would hand its number to the next open).
int Jail::close_inherited() {
    for (const int fd : cli_.keep_fds) {
        if (fcntl(fd, F_GETFD) < 0) {
            diag::error("--keep-fd " + std::to_string(fd) + ": no such open file descriptor");
            return kExitFailed;
        }
    }
    std::string list;
    for (InheritedFd& f : find_inherited(cli_.keep_fds, plan_.landlock_abi >= 6)) {
        const std::string n = std::to_string(f.fd);
        if (f.fd <= STDERR_FILENO) {
            static const char* const kNames[] = {"standard input", "standard output",
                                                 "standard error"};
            diag::error(std::string(kNames[f.fd]) + " (fd " + n + ") is " + f.what +
                        ": the command could send anything through it, around the proxy; pass "
                        "--keep-fd " +
                        n + " to allow that");
            return kExitFailed;
        }
        UniqueFd(f.fd).reset();
        list += (list.empty() ? "fd " : ", fd ") + n + " (" + f.what + ")";
        closed_.push_back(std::move(f));
    }
    if (!closed_.empty()) {
        diag::warn("closed " + std::to_string(closed_.size()) +
                   " inherited descriptor(s) that lead out of the jail: " + list +
                   "; --keep-fd N gives one to the command");
    }
    return 0;
}

/// The session directory (CA bundle, shim table), before anything is started.
int Jail::make_session_dir() {
    const std::string tmp = env_value("TMPDIR");
    std::string templ = (tmp.empty() ? "/tmp" : tmp) + "/landjail.XXXXXX";
    if (!mkdtemp(templ.data())) {
        const int err = errno;
        diag::error("cannot create the session directory in " + (tmp.empty() ? "/tmp" : tmp) +
                    (tmp.empty() ? "" : " (TMPDIR)") + ": " + std::strerror(err) +
                    "; set TMPDIR to a directory you can write");
        return kExitFailed;
    }
    session_.path = templ;
    return 0;
}

/// The audit session, the CA directory, then the proxy link, which starts without waiting.
int Jail::start_link() {
    auto session_id = proxy::new_session_id();
    if (!session_id) {
        diag::error(session_id.error().message);
        return kExitFailed;
    }
    auto ca_dir = choose_ca_dir(settings_->ca_dir);
    if (!ca_dir) {
        diag::error(ca_dir.error().message);
        return kExitFailed;
    }
    link_spec_.session_id = *session_id;
    link_spec_.ca_dir = *ca_dir;
    link_spec_.session_dir = session_.path;
    if (auto started = link_->start(); !started) {
        diag::error(started.error().message);
        return kExitFailed;
    }
    return 0;
}

/// The filter, the session directory, the proxy's address, the CA bundle, the environment.
int Jail::prepare(ChildSpec& spec) {
    auto filter = build_filter(plan_);
    if (!filter) {
        diag::error(filter.error().message);
        return kExitFailed;
    }

    auto addr = link_->wait_ready();
    if (!addr) {
        if (!addr.error().message.empty()) {  // else the proxy has said what is wrong
            diag::error(addr.error().message);
        }
        return kExitFailed;
    }
    proxy_addr_ = *addr;
    auto trust = write_client_trust(session_.path, link_spec_.ca_dir + "/ca.pem");
    if (!trust) {
        diag::error(trust.error().message);
        return kExitFailed;
    }
    const std::string url = "http://" + proxy_addr_.text();
    spec.path = command_path_;
    spec.argv = cli_.args;
    auto shim = cli_.no_shim ? Result<std::string>(std::string()) : shim_or_warn();
    if (!shim) {
        diag::error(shim.error().message);
        return kExitFailed;
    }
    spec.env = child_environment(url, *trust, *shim);
    if (!shim->empty()) {
        // The shim's placeholder-name table, shared by every process of the jail.
        const std::string table = session_.path + "/shim-table";
        UniqueFd fd(open(table.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd.valid() || ftruncate(fd.get(), sizeof(lj_table)) != 0) {
            diag::error("cannot create " + table + ": " + std::strerror(errno));
            return kExitFailed;
        }
        spec.env.push_back("LANDJAIL_SHIM_TABLE=" + table);
        spec.env.push_back("LANDJAIL_SHIM_PROXY=" + url);
    }
    spec.plan = plan_;
    spec.filter = std::move(*filter);
    spec.proxy_port = proxy_addr_.port;

    return 0;
}

/// Starts the command in the jail.
int Jail::spawn(const ChildSpec& spec) {
    // Before the child exists: orphans of the jail become ours (so that they stay our
    // descendants for ptrace access checks), and our signals queue for the signalfd.
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    if (plan_.landlock_abi == 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // nothing else keeps the jail out of our memory
    }
    std::optional<ChildFailure> failure;
    auto child = spawn_child(spec, &failure);
    if (!child) {
        diag::error("cannot start " + cli_.args.front() + ": " +
                    (failure ? describe_failure(*failure, spec.path) : child.error().message));
        return failure ? failure->exit_status : kExitFailed;
    }
    child_ = std::move(*child);

    return 0;
}

/// The supervisor thread, with the link's audit and client sinks.
void Jail::start_supervisor() {
    SupervisorConfig sc;
    sc.listener = child_.listener.get();
    sc.proxy = proxy_addr_;
    sc.landlock_abi = plan_.landlock_abi;
    sc.getfd = plan_.getfd;
    sc.audit = link_->audit_sink();
    sc.client = link_->client_sink();
    audit_inherited(sc);
    sc.self = getpid();
    sc.child = child_.pid;
    sc.proxy_pid = link_->pid();
    sc.proxy_pidfd = link_->pidfd();
    supervisor_ = std::make_shared<Supervisor>(sc);
    if (child_.listener.valid()) {
        supervisor_->use_sync_wakeup();
        // A thread that blocks in SECCOMP_IOCTL_NOTIF_RECV answers fastest (no poll round
        // trip); the main thread keeps signals and children. The listener is never closed
        // while the thread may use it: the process exit closes it.
        (void)child_.listener.release();
        std::thread([sup = supervisor_] {
            while (sup->handle_one()) {
            }
        }).detach();
    }
}

/// One socket_denied event per inherited descriptor close_inherited() closed.
void Jail::audit_inherited(const SupervisorConfig& sc) const {
    for (const InheritedFd& f : closed_) {
        if (!sc.audit) {
            return;
        }
        proxy::AuditEvent e;
        e.event = "socket_denied";
        e.allowed = false;
        e.reason = "inherited_fd_closed";
        e.pid = getpid();
        e.exe = exe_of(getpid());
        e.destination = "fd " + std::to_string(f.fd) + ": " + f.what;
        sc.audit(std::move(e));
    }
}

void Jail::reap(int* child_status, bool* child_done) {
    for (;;) {
        int status = 0;
        const pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) {
            return;
        }
        if (pid == child_.pid) {
            *child_status = status;
            *child_done = true;
        } else if (link_->reaped(pid, status)) {
            supervisor_->set_proxy_pid(0);  // it already refuses connects (the proxy's pidfd)
        }
        // Anything else is an orphan of the jail that we adopted as subreaper.
    }
}

int Jail::supervise() {
    int child_status = 0;
    bool child_done = false;
    while (!child_done) {
        pollfd fds[1] = {{signals_.get(), POLLIN, 0}};
        if (poll(fds, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            diag::error(std::string("poll: ") + std::strerror(errno));
            kill(child_.pid, SIGKILL);
        }
        signalfd_siginfo si{};
        while (read(signals_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            const int sig = static_cast<int>(si.ssi_signo);
            if (sig == SIGCHLD) {
                reap(&child_status, &child_done);
            } else if (si.ssi_code != SI_KERNEL) {
                kill(child_.pid, sig);
            }
        }
    }
    if (auto f = read_failure(child_.report.get())) {
        diag::error("cannot run " + cli_.args.front() + ": " + describe_failure(*f, command_path_));
        return f->exit_status;
    }
    return status_to_exit(child_status);
}

int Jail::finish(int exit_status) {
    if (link_) {
        link_->stop();
    }
    return exit_status;
}

}  // namespace

int run_command(const CliOptions& cli) {
    Jail jail(cli);
    return jail.run();
}

}  // namespace lj::jail
