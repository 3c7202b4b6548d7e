// SPDX-License-Identifier: Apache-2.0
#include "proxy/server/server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <spdlog/spdlog.h>

#include "policy/rule.hpp"
#include "proxy/base/config_loader.hpp"

namespace lj::proxy {
namespace {

constexpr auto kDrainGrace = std::chrono::seconds(10);
/// "127.0.0.1:0" or "[::1]:8080"; only loopback addresses are accepted.
Result<tcp::endpoint> parse_listen(const std::string& text) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
        return make_error("--listen '" + text + "': expected ADDR:PORT, e.g. 127.0.0.1:0");
    }
    std::string addr = text.substr(0, colon);
    if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']') {
        addr = addr.substr(1, addr.size() - 2);
    }
    error_code ec;
    const auto ip = asio::ip::make_address(addr, ec);
    if (ec) {
        return make_error("--listen '" + text + "': '" + addr +
                          "' is not an IP address (expected ADDR:PORT, e.g. 127.0.0.1:0)");
    }
    auto port = policy::parse_port(text.substr(colon + 1), true);
    if (!port) {
        return make_error("--listen '" + text + "': " + port.error().message);
    }
    if (!ip.is_loopback()) {
        return make_error("--listen '" + text +
                          "': the proxy listens on loopback addresses only (127.0.0.0/8, ::1)");
    }
    return tcp::endpoint(ip, *port);
}

Result<std::vector<policy::HostPattern>> passthrough_patterns(
    const std::vector<std::string>& names) {
    std::vector<policy::HostPattern> out;
    for (const std::string& name : names) {
        auto rule = policy::parse_rule("domain=" + name);
        if (!rule) {
            return make_error("tls.passthrough: " + rule.error().message);
        }
        out.push_back(*rule->host);
    }
    return out;
}

/// --ready-fd, --event-fd and --clients-fd must name descriptors the parent left open.
Status check_fds(const ProxyOptions& opt) {
    const std::pair<const std::optional<int>&, const char*> fds[] = {
        {opt.ready_fd, "--ready-fd"},
        {opt.event_fd, "--event-fd"},
        {opt.clients_fd, "--clients-fd"}};
    for (const auto& [fd, name] : fds) {
        if (fd && ::fcntl(*fd, F_GETFD) < 0) {
            return make_error(std::string(name) + " " + std::to_string(*fd) +
                              ": not an open file descriptor (the program that starts "
                              "landjail-proxy must pass it open)");
        }
    }
    return {};
}

unsigned worker_count(const ProxyOptions& opt) {
    return opt.threads ? opt.threads
                       : std::clamp(std::thread::hardware_concurrency(), 1u, kMaxDefaultThreads);
}

}  // namespace

Result<std::unique_ptr<Server>> Server::create(const ProxyOptions& opt) {
    if (auto fds = check_fds(opt); !fds) {
        return fds.error();
    }
    std::unique_ptr<Server> srv(new Server());
    srv->fd_limit_ = raise_fd_limit();
    auto settings = load_settings(opt.config, opt.flags);
    if (!settings) {
        return settings.error();
    }
    srv->settings_ = std::move(*settings);
    const std::string& level = srv->settings_.log_level.value;
    spdlog::set_level(spdlog::level::from_str(level == "warn" ? "warning" : level));
    for (const std::string& w : srv->settings_.warnings) {
        spdlog::warn("{}", w);
    }
    auto endpoint = parse_listen(opt.listen);
    if (!endpoint) {
        return endpoint.error();
    }
    auto overrides = resolve_overrides(opt.resolve);
    if (!overrides) {
        return overrides.error();
    }
    std::vector<ResolveOverride> resolves = std::move(*overrides);
    auto passthrough = passthrough_patterns(srv->settings_.tls.passthrough);
    if (!passthrough) {
        return passthrough.error();
    }
    std::optional<std::string> upstream_ca = opt.upstream_ca;
    std::string upstream_ca_label = "--upstream-ca";
    if (!upstream_ca && srv->settings_.tls.upstream_ca) {
        upstream_ca = srv->settings_.tls.upstream_ca->value;
        upstream_ca_label = srv->settings_.tls.upstream_ca->origin + ": tls.upstream_ca";
    }
    auto auditor = start_auditor(srv->settings_,
                                 AuditRole{opt.session_id, opt.command_name, true, upstream_ca});
    if (!auditor) {
        return auditor.error();
    }
    srv->auditor_ = std::move(*auditor);
    if (auto ok = srv->attach_jail(opt); !ok) {
        return ok.error();
    }
    srv->shared_.engine = srv->settings_.engine;
    srv->shared_.passthrough = std::move(*passthrough);
    srv->shared_.timeouts = opt.timeouts;
    srv->shared_.auditor = srv->auditor_.get();
    srv->shared_.clients = srv->clients_.get();
    const policy::Settings& s = srv->settings_;
    srv->shared_.intercept_denied = !s.tls.intercept_denied || s.tls.intercept_denied->value;
    srv->shared_.correlation = s.correlation.engine;
    srv->shared_.session_header = s.correlation.session_header.value;
    srv->shared_.sequence_header = s.correlation.sequence_header.value;
    srv->plan_limits(worker_count(opt));
    if (auto ok = srv->build_workers(opt, resolves, upstream_ca, upstream_ca_label); !ok) {
        return ok.error();
    }
    if (auto ok = srv->listen(*endpoint); !ok) {
        return ok.error();
    }
    return srv;
}

Status Server::attach_jail(const ProxyOptions& opt) {
    if (opt.event_fd) {
        UniqueFd events(*opt.event_fd);
        if (auditor_) {
            auditor_->attach_jail_events(std::move(events));
        }
    }
    if (opt.clients_fd) {
        auto clients = ClientMap::map(*opt.clients_fd);
        if (!clients) {
            return make_error("--clients-fd: " + clients.error().message);
        }
        clients_ = std::move(*clients);
        UniqueFd mapped(*opt.clients_fd);  // the mapping stays; the descriptor is not needed
    }
    return {};
}

Status Server::build_workers(const ProxyOptions& opt, const std::vector<ResolveOverride>& resolves,
                             const std::optional<std::string>& upstream_ca,
                             const std::string& upstream_ca_label) {
    CertAuthority::Options ca_opts;
    ca_opts.dir = settings_.ca_dir.value;
    const unsigned threads = worker_count(opt);
    // mbedTLS caches ECP precomputations inside key contexts on first use, unlocked: every
    // worker gets its own CA instance (and leaf key) and its own trust store. They are built
    // in parallel (parsing the system bundle is most of the proxy's start-up time); the CA
    // directory is locked (flock), so concurrent opens create at most one CA.
    auto make_worker = [&]() -> Result<std::unique_ptr<Worker>> {
        auto w = std::make_unique<Worker>();
        w->shared = &shared_;
        auto ca = CertAuthority::open(ca_opts);
        if (!ca) {
            return make_error("interception CA: " + ca.error().message);
        }
        auto trust = TrustStore::load(kSystemCaBundle, upstream_ca, upstream_ca_label);
        if (!trust) {
            return trust.error();
        }
        if ((*ca)->created()) {
            std::fprintf(stderr,
                         "landjail-proxy: created a new interception CA: %s (clients must trust "
                         "it)\n",
                         (*ca)->cert_path().c_str());
        }
        auto tls = TlsContext::create(*ca, *trust);
        if (!tls) {
            return tls.error();
        }
        w->tls = std::move(*tls);
        Upstream::Options up;
        up.resolve = resolves;
        up.connect_timeout = std::min(opt.timeouts.upstream, std::chrono::milliseconds(30000));
        // kMaxIdlePerHost in all, shared out among the workers.
        up.max_idle_per_key = std::max<std::size_t>(1, kMaxIdlePerHost / threads);
        up.max_idle_total = budget_.pool_per_worker;
        w->upstream = std::make_unique<Upstream>(w->io, *w->tls, std::move(up));
        // The event loop's epoll, eventfd and timerfd now, not with the first connection,
        // when descriptors may have run out (Asio would throw from inside the loop).
        asio::steady_timer reactor(w->io);
        return w;
    };
    std::vector<std::optional<Result<std::unique_ptr<Worker>>>> built(threads);
    {
        std::vector<std::jthread> builders;
        for (unsigned i = 1; i < threads; ++i) {
            builders.emplace_back([&built, &make_worker, i] { built[i] = make_worker(); });
        }
        built[0] = make_worker();
    }  // joins the builders
    for (auto& b : built) {
        if (!*b) {
            return b->error();
        }
        workers_.push_back(std::move(**b));
    }
    return {};
}

Server::~Server() = default;

Status Server::listen(const tcp::endpoint& endpoint) {
    // One acceptor (no SO_REUSEPORT: another process of the same user could join the port
    // and take connections); accepted sockets are handed to the workers in turn.
    acceptor_ = std::make_unique<tcp::acceptor>(workers_[0]->io);
    error_code ec;
    acceptor_->open(endpoint.protocol(), ec);
    if (!ec) {
        acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
        acceptor_->bind(endpoint, ec);
    }
    if (!ec) {
        acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    }
    if (!ec) {
        // shed_backlog() calls accept4() on it directly, which must never block.
        acceptor_->native_non_blocking(true, ec);
    }
    if (ec) {
        const bool taken = ec == asio::error::address_in_use;
        return make_error("cannot listen on " + endpoint.address().to_string() + ":" +
                          std::to_string(endpoint.port()) + ": " + ec.message() +
                          (taken ? " (another program listens there): choose another port, or "
                                   "0 for a free one"
                                 : ""));
    }
    endpoint_ = acceptor_->local_endpoint();  // the port chosen for ":0"
    accept_pause_ = std::make_unique<asio::steady_timer>(workers_[0]->io);
    return {};
}

std::string Server::address() const {
    const auto a = endpoint_.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" +
           std::to_string(endpoint_.port());
}

/// Stops one worker: no more connections, no keep-alive, idle connections closed; requests
/// in flight may finish within the grace period, after which the rest are cut. The
/// io_context then runs out of work and its run() returns.
awaitable<void> Server::drain(Worker& w) {
    error_code ec;
    if (&w == workers_[0].get()) {
        acceptor_->close(ec);
        accept_pause_->cancel();
    }
    w.drain();
    w.upstream->clear();
    w.busy.reset();  // run() returns once the last session and timer are done
    asio::steady_timer timer(w.io);
    const auto deadline = std::chrono::steady_clock::now() + kDrainGrace;
    while (!w.sessions.empty()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            spdlog::warn("{} connection(s) still busy after {} s; closing them", w.sessions.size(),
                         kDrainGrace.count());
            w.abort_all();
            break;
        }
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    if (&w == workers_[0].get()) {
        signals_->cancel();  // the signal_set was worker 0's last piece of work
    }
}

/// First SIGTERM/SIGINT: graceful shutdown. A second one: close the connections at once.
/// SIGHUP: reopen the audit file (logrotate renamed it), and go on.
void Server::wait_signal() {
    signals_->async_wait([this](const error_code& ec, int sig) {
        if (ec) {
            return;  // cancelled: the shutdown is complete
        }
        if (sig == SIGHUP) {
            spdlog::info("signal {}: reopening the audit file", sig);
            if (auditor_) {
                auditor_->reopen();
            }
        } else if (!shutting_down_) {
            spdlog::info("signal {}: finishing requests in flight", sig);
            shutting_down_ = true;
            shutdown();
        } else {
            spdlog::info("signal {} again: closing connections now", sig);
            for (auto& w : workers_) {
                asio::post(w->io, [w = w.get()] { w->abort_all(); });
            }
        }
        wait_signal();
    });
}

void Server::shutdown() {
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        asio::co_spawn(workers_[i]->io, drain(*workers_[i]), asio::detached);
    }
}

int Server::run(std::optional<int> ready_fd) {
    ::signal(SIGPIPE, SIG_IGN);
    asio::signal_set signals(workers_[0]->io, SIGTERM, SIGINT, SIGHUP);
    signals_ = &signals;
    wait_signal();
    asio::co_spawn(workers_[0]->io, accept_loop(), asio::detached);
    // Always printed (stdout), whatever the log level: scripts read the chosen port here.
    std::printf("landjail-proxy: listening on %s (%zu worker thread%s)\n", address().c_str(),
                workers_.size(), workers_.size() == 1 ? "" : "s");
    std::fflush(stdout);
    if (ready_fd) {
        const UniqueFd ready(*ready_fd);  // closed after the line: EOF tells the reader we are up
        if (write_all(ready.get(), address() + "\n") != 0) {
            spdlog::warn("--ready-fd {}: write failed", *ready_fd);
        }
    }
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < workers_.size(); ++i) {
        threads.emplace_back([w = workers_[i].get()] { w->io.run(); });
    }
    workers_[0]->io.run();
    for (std::thread& t : threads) {
        t.join();
    }
    if (over_cap_.total()) {
        spdlog::warn("{} connection(s) were answered 503 over max_connections {} during this run",
                     over_cap_.total(), budget_.max_connections);
    }
    if (auditor_) {
        auditor_->stop();
    }
    return 0;
}

}  // namespace lj::proxy
