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
#include "shim/core.h"

extern char** environ;

namespace lj::jail {
namespace {

constexpr auto kProxyReadyTimeout = std::chrono::seconds(30);
constexpr auto kProxyStopGrace = std::chrono::seconds(20);  // drain 10 s + audit.http 5 s
/// After the command has exited, how long processes it left behind may still finish requests
/// in flight before the proxy cuts them (at once when none is left: their client is gone).
/// The user gets the terminal back within a second (issue 16).
constexpr auto kOrphanRequestGrace = std::chrono::milliseconds(250);

/// Signals we pass on to the command. A signal the terminal sent (SI_KERNEL) already reached
/// the command, which shares our foreground process group: only others are forwarded.
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

void error(const std::string& msg) {
    std::cerr << "landjail: " << msg << "\n";
}

void warn(const std::string& msg) {
    std::cerr << "landjail: warning: " << msg << "\n";
}

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

class Jail {
  public:
    explicit Jail(const CliOptions& cli) : cli_(cli) {}
    int run();

  private:
    int start();
    int decide();
    int check_inputs();
    int close_inherited();
    void audit_inherited(const SupervisorConfig& sc) const;
    int make_session_dir();
    int launch_proxy();
    UniqueFd client_table();
    void hold_proxy_log();
    int prepare(ChildSpec& spec);
    int spawn(const ChildSpec& spec);
    void start_supervisor();
    int supervise();
    void reap(int* child_status, bool* child_done);
    void proxy_died(int status);
    int finish(int exit_status);

    const CliOptions& cli_;
    std::optional<policy::Settings> settings_;
    proxy::ConfigChoice config_;  ///< where the settings came from (the profiles' files)
    std::string session_id_;
    std::string command_path_;
    std::string ca_dir_;
    Plan plan_;
    std::vector<InheritedFd> closed_;  ///< inherited descriptors closed (close_inherited)
    SessionDir session_;
    ProxyProcess proxy_;
    InetAddr proxy_addr_;
    Child child_;
    // Shared with the supervisor thread, which is never joined: it blocks in the kernel
    // until the process exits, so what it uses must outlive the Jail.
    std::shared_ptr<proxy::Auditor> auditor_;  ///< with --proxy-addr, or once our proxy died
    std::shared_ptr<JailEvents> events_;       ///< to our proxy's --event-fd
    void* clients_table_ = nullptr;            ///< shared with our proxy's --clients-fd
    std::shared_ptr<Supervisor> supervisor_;
    UniqueFd signals_;
    UniqueFd proxy_log_;  ///< the proxy's stderr while the command has our terminal
    off_t proxy_log_shown_ = 0;
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
        error("no command given: landjail [OPTIONS] -- COMMAND [ARG...] (see landjail --help)");
        return kExitFailed;
    }
    ChildSpec spec;
    int rc = 0;
    if ((rc = decide()) != 0 || (rc = close_inherited()) != 0 || (rc = make_session_dir()) != 0 ||
        (rc = launch_proxy()) != 0 || (rc = prepare(spec)) != 0 || (rc = spawn(spec)) != 0) {
        return rc;
    }
    start_supervisor();
    return 0;
}

/// The settings, the protection plan (with its warnings) and the command's path.
int Jail::decide() {
    auto settings = proxy::load_settings(cli_.config, cli_.flags, &config_);
    if (!settings) {
        error(settings.error().what());
        return kExitFailed;
    }
    settings_ = std::move(*settings);
    for (const std::string& w : settings_->jail_warnings) {
        warn(w);
    }
    if (cli_.proxy_addr) {
        // Otherwise the proxy we start reads the same config and prints these itself.
        for (const std::string& w : settings_->warnings) {
            warn(w);
        }
    }
    if (const int rc = check_inputs(); rc != 0) {
        return rc;
    }
    auto req = requirements_of(cli_);
    if (!req) {
        error(req.error().message);
        return kExitFailed;
    }
    auto plan = plan_protection(probe_host(false), *req, cli_.allow_weak);
    if (!plan) {
        error(plan.error().message);
        return kExitFailed;
    }
    plan_ = *plan;
    for (const std::string& lost : plan_.lost) {
        warn("protection is " + std::string(plan_.weak ? "weak" : "degraded") + " (level " +
             std::to_string(plan_.level) + "): " + lost);
    }
    const ResolvedCommand cmd = resolve_command(cli_.args.front(), env_value("PATH"));
    if (cmd.exit_status != 0) {
        error(cmd.error);
        return cmd.exit_status;
    }
    command_path_ = cmd.path;
    return 0;
}

/// What landjail can check before it starts the proxy (check_proxy_inputs).
int Jail::check_inputs() {
    if (auto ok = check_proxy_inputs(*settings_, cli_.proxy_addr ? nullptr : &cli_); !ok) {
        error(ok.error().message);
        return kExitFailed;
    }
    return 0;
}

/// Inherited descriptors that lead out of the jail (find_inherited) are closed before the
/// proxy and the command start, unless --keep-fd names them; such a descriptor on standard
/// input, output or error is an error (closing it would hand its number to the next open).
int Jail::close_inherited() {
    for (const int fd : cli_.keep_fds) {
        if (fcntl(fd, F_GETFD) < 0) {
            error("--keep-fd " + std::to_string(fd) + ": no such open file descriptor");
            return kExitFailed;
        }
    }
    std::string list;
    for (InheritedFd& f : find_inherited(cli_.keep_fds, plan_.landlock_abi >= 6)) {
        const std::string n = std::to_string(f.fd);
        if (f.fd <= STDERR_FILENO) {
            static const char* const kNames[] = {"standard input", "standard output",
                                                 "standard error"};
            error(std::string(kNames[f.fd]) + " (fd " + n + ") is " + f.what +
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
        warn("closed " + std::to_string(closed_.size()) +
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
        error("cannot create the session directory in " + (tmp.empty() ? "/tmp" : tmp) +
              (tmp.empty() ? "" : " (TMPDIR)") + ": " + std::strerror(err) +
              "; set TMPDIR to a directory you can write");
        return kExitFailed;
    }
    session_.path = templ;
    return 0;
}

/// Starts our landjail-proxy (unless --proxy-addr), without waiting for it.
/// Who is behind each client port, for the proxy's audit events: a shared memory table,
/// mapped here until we exit. Invalid when it cannot be made (events then lack pid/exe).
UniqueFd Jail::client_table() {
    UniqueFd fd(memfd_create("landjail-clients", MFD_CLOEXEC));
    void* table = fd.valid() && ftruncate(fd.get(), proxy::ClientMap::kBytes) == 0
                      ? mmap(nullptr, proxy::ClientMap::kBytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                             fd.get(), 0)
                      : MAP_FAILED;
    if (table == MAP_FAILED) {
        return UniqueFd();
    }
    clients_table_ = table;
    return fd;
}

/// An interactive command (a TUI agent) owns the terminal: the proxy's stderr goes to a file
/// and its denial lines are shown after the command exits, unless the user asked for them
/// (audit.stderr) or for logs (a log level other than warn).
void Jail::hold_proxy_log() {
    const policy::Settings& s = *settings_;
    if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO) && !s.audit.stderr_denials &&
        s.log_level.value == "warn" && !s.disable_audit_logs.value) {
        const std::string path = session_.path + "/proxy.stderr";
        proxy_log_.reset(
            open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
    }
}

int Jail::launch_proxy() {
    auto session_id = proxy::new_session_id();
    if (!session_id) {
        error(session_id.error().message);
        return kExitFailed;
    }
    session_id_ = *session_id;
    auto ca_dir = choose_ca_dir(cli_.ca_dir);
    if (!ca_dir) {
        error(ca_dir.error().message);
        return kExitFailed;
    }
    ca_dir_ = *ca_dir;
    if (cli_.proxy_addr) {
        auto addr = parse_inet(*cli_.proxy_addr);
        if (!addr) {
            error("--proxy-addr " + addr.error().message);
            return kExitFailed;
        }
        proxy_addr_ = *addr;
    } else {
        auto binary = find_proxy_binary();
        if (!binary) {
            error(binary.error().message);
            return kExitFailed;
        }
        // The proxy gets --audit-log LOG_DIR/audit.jsonl; the directory is made here.
        if (auto made = proxy::make_log_dir(*settings_); !made) {
            error(made.error().message);
            return kExitFailed;
        }
        // It starts while we prepare the jail; we wait for its address below.
        // The supervisor's events go to the proxy, which puts them in its ordered stream.
        int events[2] = {-1, -1};
        if (plan_.supervise && !settings_->disable_audit_logs.value &&
            pipe2(events, O_CLOEXEC) == 0) {
            fcntl(events[1], F_SETPIPE_SZ, 1 << 20);  // room for thousands of events
            events_ = std::make_shared<JailEvents>(UniqueFd(events[1]), UniqueFd(events[0]));
        }
        UniqueFd clients = events_ ? client_table() : UniqueFd();
        hold_proxy_log();
        auto started =
            start_proxy(*binary, proxy_arguments(cli_, *settings_, config_, ca_dir_, session_id_),
                        events[0], clients.get(), proxy_log_.get());
        if (!started) {
            error("cannot start the proxy: " + started.error().message);
            return kExitFailed;
        }
        proxy_ = std::move(*started);
    }
    return 0;
}

/// The filter, the session directory, the proxy's address, the CA bundle, the environment.
int Jail::prepare(ChildSpec& spec) {
    auto filter = build_filter(plan_);
    if (!filter) {
        error(filter.error().message);
        return kExitFailed;
    }

    if (proxy_.pid > 0) {
        auto ready = wait_ready(proxy_, kProxyReadyTimeout);
        if (proxy_log_.valid()) {
            relay_proxy_log(proxy_log_.get(), &proxy_log_shown_, false);  // start-up messages
        }
        if (!ready) {
            if (!proxy_.explained) {  // else its own message says what is wrong
                error("cannot start the proxy: " + ready.error().message);
            }
            return kExitFailed;
        }
        auto addr = parse_inet(proxy_.address);
        if (!addr) {
            error("landjail-proxy reported an unusable address " + addr.error().message);
            return kExitFailed;
        }
        proxy_addr_ = *addr;
    } else if (auto reached = probe_proxy(proxy_addr_); !reached) {
        error("--proxy-addr " + proxy_addr_.text() + ": " + reached.error().message);
        return kExitFailed;
    }
    auto trust = write_client_trust(session_.path, ca_dir_ + "/ca.pem");
    if (!trust) {
        error(trust.error().message);
        return kExitFailed;
    }
    const std::string url = "http://" + proxy_addr_.text();
    spec.path = command_path_;
    spec.argv = cli_.args;
    auto shim = cli_.no_shim ? Result<std::string>(std::string()) : shim_or_warn();
    if (!shim) {
        error(shim.error().message);
        return kExitFailed;
    }
    spec.env = child_environment(url, *trust, *shim);
    if (!shim->empty()) {
        // The shim's placeholder-name table, shared by every process of the jail.
        const std::string table = session_.path + "/shim-table";
        UniqueFd fd(open(table.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd.valid() || ftruncate(fd.get(), sizeof(lj_table)) != 0) {
            error("cannot create " + table + ": " + std::strerror(errno));
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
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    for (const int s : kForwarded) sigaddset(&mask, s);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signals_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));

    std::optional<ChildFailure> failure;
    auto child = spawn_child(spec, &failure);
    if (!child) {
        error("cannot start " + cli_.args.front() + ": " +
              (failure ? describe_failure(*failure, spec.path) : child.error().message));
        return failure ? failure->exit_status : kExitFailed;
    }
    child_ = std::move(*child);

    return 0;
}

/// Our own auditor with --proxy-addr, then the supervisor thread.
void Jail::start_supervisor() {
    if (plan_.supervise && !events_ && cli_.proxy_addr) {
        // An external proxy (--proxy-addr): our own session, written to the same sinks.
        auto auditor = proxy::start_auditor(*settings_, session_id_);
        if (!auditor) {
            warn(auditor.error().what() + "; the jail's own audit events are lost");
        } else {
            auditor_ = std::move(*auditor);
        }
    }
    SupervisorConfig sc;
    sc.listener = child_.listener.get();
    sc.proxy = proxy_addr_;
    sc.landlock_abi = plan_.landlock_abi;
    sc.getfd = plan_.getfd;
    if (events_) {
        // Never blocks the supervisor: a full pipe (the proxy stuck) drops and counts.
        sc.audit = [events = events_](proxy::AuditEvent&& e) { events->record(std::move(e)); };
        if (clients_table_) {
            sc.client = [table = clients_table_](pid_t pid, std::uint16_t port) {
                proxy::ClientMap::store(table, port, pid);
            };
        }
    } else if (auditor_) {
        sc.audit = [a = auditor_](proxy::AuditEvent&& e) { a->record(std::move(e)); };
    }
    audit_inherited(sc);
    sc.self = getpid();
    sc.child = child_.pid;
    sc.proxy_pid = proxy_.pid;
    sc.proxy_pidfd = proxy_.pidfd.get();
    supervisor_ = std::make_shared<Supervisor>(sc);
    if (child_.listener.valid()) {
        supervisor_->use_sync_wakeup();
        // A thread that blocks in SECCOMP_IOCTL_NOTIF_RECV answers fastest (no poll round
        // trip); the main thread keeps signals and children. The listener is never closed
        // while the thread may use it: the process exit closes it.
        (void)child_.listener.release();
        std::thread([sup = supervisor_, audit = auditor_] {
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
        } else if (pid == proxy_.pid) {
            proxy_died(status);
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
            error(std::string("poll: ") + std::strerror(errno));
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
        error("cannot run " + cli_.args.front() + ": " + describe_failure(*f, command_path_));
        return f->exit_status;
    }
    return status_to_exit(child_status);
}

/// Our proxy exited before the command: the supervisor already refuses every connect (it
/// watches the proxy's pidfd); the jail's events now go to an auditor of our own, in a new
/// audit session (the proxy's stream ended without us knowing its last seq).
void Jail::proxy_died(int status) {
    proxy_.pid = -1;
    supervisor_->set_proxy_pid(0);
    std::string audit;
    if (events_) {
        auto id = proxy::new_session_id();
        auto local = id ? proxy::start_auditor(*settings_, *id)
                        : Result<std::unique_ptr<proxy::Auditor>>(id.error());
        if (local && *local) {
            auditor_ = std::move(*local);
            audit = "; landjail writes the jail's audit events itself, as audit session " + *id;
        } else {
            audit = "; the jail's audit events are lost from now on" +
                    (local ? std::string() : " (" + local.error().what() + ")");
        }
        if (const std::uint64_t recovered = events_->switch_to(auditor_); recovered > 0) {
            audit += ", with the " + std::to_string(recovered) + " the proxy had not read";
        }
    }
    warn("landjail-proxy " + describe_status(status) +
         ": every connection of the jail is refused from now on (fail closed)" + audit);
}

int Jail::finish(int exit_status) {
    if (proxy_.pid > 0) {
        const bool orphans = jail_processes_left(proxy_.pid);
        stop_proxy(proxy_, kProxyStopGrace,
                   orphans ? kOrphanRequestGrace : std::chrono::milliseconds(0));
    }
    if (events_) {
        events_->switch_to(auditor_);  // events of the jail's orphans after the proxy stopped
    }
    if (proxy_log_.valid()) {
        relay_proxy_log(proxy_log_.get(), &proxy_log_shown_, true);
    }
    if (auditor_) {
        auditor_->stop();
    }
    if (const auto n = events_ ? events_->dropped() : 0; n > 0) {
        warn(std::to_string(n) +
             " audit events of the jail were lost: the proxy did not read them (its event pipe "
             "was full, or it died reading one)");
    }
    return exit_status;
}

}  // namespace

int run_command(const CliOptions& cli) {
    Jail jail(cli);
    return jail.run();
}

}  // namespace lj::jail
