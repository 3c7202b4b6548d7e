// SPDX-License-Identifier: Apache-2.0
#include "landjail/link/proxy_link.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>

#include "landjail/jail/spawn.hpp"
#include "landjail/link/proxy_process.hpp"
#include "proxy/audit/auditor.hpp"
#include "proxy/audit/jail_events.hpp"
#include "proxy/audit/jail_link.hpp"
#include "proxy/base/diag.hpp"

namespace lj::jail {
namespace {

constexpr auto kProxyReadyTimeout = std::chrono::seconds(30);
constexpr auto kProxyStopGrace = std::chrono::seconds(20);  // drain 10 s + audit.http 5 s
/// After the command has exited, how long processes it left behind may still finish requests
/// in flight before the proxy cuts them (at once when none is left: their client is gone).
/// The user gets the terminal back within a second (issue 16).
constexpr auto kOrphanRequestGrace = std::chrono::milliseconds(250);

/// A landjail-proxy already running at --proxy-addr: landjail audits the jail's own events in
/// a session of its own, written to the same sinks.
class ExternalProxy final : public ProxyLink {
  public:
    explicit ExternalProxy(const LinkSpec& spec) : spec_(spec) {}

    Status check() override {
        // No proxy of ours reads this config: its warnings are ours to print.
        for (const std::string& w : spec_.settings->warnings) {
            diag::warn(w);
        }
        return check_proxy_inputs(*spec_.settings, nullptr);
    }

    Status start() override {
        auto addr = parse_inet(*spec_.cli->proxy_addr);
        if (!addr) {
            return make_error("--proxy-addr " + addr.error().message);
        }
        addr_ = *addr;
        if (spec_.plan->supervise) {
            auto auditor = proxy::start_auditor(*spec_.settings, spec_.session_id);
            if (!auditor) {
                diag::warn(auditor.error().what() + "; the jail's own audit events are lost");
            } else {
                auditor_ = std::move(*auditor);
            }
        }
        return {};
    }

    Result<InetAddr> wait_ready() override {
        if (auto reached = probe_proxy(addr_); !reached) {
            return make_error("--proxy-addr " + addr_.text() + ": " + reached.error().message);
        }
        return addr_;
    }

    std::function<void(proxy::AuditEvent&&)> audit_sink() override {
        if (!auditor_) {
            return {};
        }
        return [a = auditor_](proxy::AuditEvent&& e) { a->record(std::move(e)); };
    }
    std::function<void(pid_t, std::uint16_t)> client_sink() override { return {}; }
    pid_t pid() const override { return 0; }
    int pidfd() const override { return -1; }
    bool reaped(pid_t, int) override { return false; }

    void stop() override {
        if (auditor_) {
            auditor_->stop();
        }
    }

  private:
    const LinkSpec& spec_;
    InetAddr addr_;
    std::shared_ptr<proxy::Auditor> auditor_;  ///< shared with the supervisor thread
};

/// Our own landjail-proxy: the supervisor's events go to it through a pipe (--event-fd) so
/// that they join its ordered stream, and who is behind each client port through a shared
/// table (--clients-fd). When it dies, the jail fails closed and landjail audits itself.
class LocalProxy final : public ProxyLink {
  public:
    explicit LocalProxy(const LinkSpec& spec) : spec_(spec) {}

    Status check() override { return check_proxy_inputs(*spec_.settings, spec_.cli); }
    Status start() override;
    Result<InetAddr> wait_ready() override;
    std::function<void(proxy::AuditEvent&&)> audit_sink() override;
    std::function<void(pid_t, std::uint16_t)> client_sink() override;
    pid_t pid() const override { return proxy_.pid > 0 ? proxy_.pid : 0; }
    int pidfd() const override { return proxy_.pidfd.get(); }
    bool reaped(pid_t pid, int status) override;
    void stop() override;

  private:
    UniqueFd client_table();
    void hold_proxy_log();

    const LinkSpec& spec_;
    ProxyProcess proxy_;
    // Shared with the supervisor thread, which is never joined: it blocks in the kernel
    // until the process exits, so what it uses must outlive the link.
    std::shared_ptr<JailEvents> events_;       ///< to the proxy's --event-fd
    std::shared_ptr<proxy::Auditor> auditor_;  ///< once the proxy is gone
    void* clients_table_ = nullptr;            ///< shared with the proxy's --clients-fd
    UniqueFd proxy_log_;  ///< the proxy's stderr while the command has our terminal
    off_t proxy_log_shown_ = 0;
};

Status LocalProxy::start() {
    auto binary = find_proxy_binary();
    if (!binary) {
        return binary.error();
    }
    // The proxy gets --audit-log LOG_DIR/audit.jsonl; the directory is made here.
    if (auto made = proxy::make_log_dir(*spec_.settings); !made) {
        return made.error();
    }
    int events[2] = {-1, -1};
    if (spec_.plan->supervise && !spec_.settings->disable_audit_logs.value &&
        pipe2(events, O_CLOEXEC) == 0) {
        fcntl(events[1], F_SETPIPE_SZ, 1 << 20);  // room for thousands of events
        events_ = std::make_shared<JailEvents>(UniqueFd(events[1]), UniqueFd(events[0]));
    }
    UniqueFd clients = events_ ? client_table() : UniqueFd();
    hold_proxy_log();
    auto started = start_proxy(
        *binary,
        proxy_arguments(*spec_.cli, *spec_.settings, *spec_.config, spec_.ca_dir, spec_.session_id),
        events[0], clients.get(), proxy_log_.get());
    if (!started) {
        return make_error("cannot start the proxy: " + started.error().message);
    }
    proxy_ = std::move(*started);
    return {};
}

/// Who is behind each client port, for the proxy's audit events: a shared memory table,
/// mapped here until we exit. Invalid when it cannot be made (events then lack pid/exe).
UniqueFd LocalProxy::client_table() {
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
void LocalProxy::hold_proxy_log() {
    const policy::Settings& s = *spec_.settings;
    if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO) && !s.audit.stderr_denials &&
        s.log_level.value == "warn" && !s.disable_audit_logs.value) {
        const std::string path = spec_.session_dir + "/proxy.stderr";
        proxy_log_.reset(
            open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
    }
}

Result<InetAddr> LocalProxy::wait_ready() {
    auto ready = lj::jail::wait_ready(proxy_, kProxyReadyTimeout);
    if (proxy_log_.valid()) {
        relay_proxy_log(proxy_log_.get(), &proxy_log_shown_, false);  // start-up messages
    }
    if (!ready) {
        // When the proxy explained itself, its own message says what is wrong.
        return make_error(proxy_.explained ? std::string()
                                           : "cannot start the proxy: " + ready.error().message);
    }
    auto addr = parse_inet(proxy_.address);
    if (!addr) {
        return make_error("landjail-proxy reported an unusable address " + addr.error().message);
    }
    return *addr;
}

std::function<void(proxy::AuditEvent&&)> LocalProxy::audit_sink() {
    if (!events_) {
        return {};
    }
    // Never blocks the supervisor: a full pipe (the proxy stuck) drops and counts.
    return [events = events_](proxy::AuditEvent&& e) { events->record(std::move(e)); };
}

std::function<void(pid_t, std::uint16_t)> LocalProxy::client_sink() {
    if (!clients_table_) {
        return {};
    }
    return [table = clients_table_](pid_t pid, std::uint16_t port) {
        proxy::ClientMap::store(table, port, pid);
    };
}

/// Our proxy exited before the command: the supervisor already refuses every connect (it
/// watches the proxy's pidfd); the jail's events now go to an auditor of our own, in a new
/// audit session (the proxy's stream ended without us knowing its last seq).
bool LocalProxy::reaped(pid_t pid, int status) {
    if (proxy_.pid <= 0 || pid != proxy_.pid) {
        return false;
    }
    proxy_.pid = -1;
    std::string audit;
    if (events_) {
        auto id = proxy::new_session_id();
        auto local = id ? proxy::start_auditor(*spec_.settings, *id)
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
    diag::warn("landjail-proxy " + describe_status(status) +
               ": every connection of the jail is refused from now on (fail closed)" + audit);
    return true;
}

void LocalProxy::stop() {
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
        diag::warn(std::to_string(n) +
                   " audit events of the jail were lost: the proxy did not read them (its event "
                   "pipe was full, or it died reading one)");
    }
}

}  // namespace

std::unique_ptr<ProxyLink> make_proxy_link(const LinkSpec& spec) {
    if (spec.cli->proxy_addr) {
        return std::make_unique<ExternalProxy>(spec);
    }
    return std::make_unique<LocalProxy>(spec);
}

}  // namespace lj::jail
