// SPDX-License-Identifier: Apache-2.0
// The server's admission control (see admission.hpp): sizing max_connections and the pools
// from the descriptor limit at start, and the accept loop, which counts connections, hands
// them to the workers, answers those over max_connections with 503, and backs off instead of
// spinning when accept() fails (shedding the backlog when out of descriptors).
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>

#include "proxy/server/server.hpp"

namespace lj::proxy {
namespace {

/// A refusal over max_connections waits this long for its client to close (holding a
/// descriptor; at most budget_.lingering at once, beyond that they are closed at once).
constexpr auto kRefusalLinger = std::chrono::milliseconds(1000);
/// Connections taken off the backlog and refused per accept error while out of descriptors.
constexpr std::size_t kShedPerRound = 64;
constexpr auto kMinBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);
/// Below this many connections the descriptor limit is worth a warning at start.
constexpr std::size_t kLowFit = 256;

/// How the limit reads in messages: "1024, hard limit 4096".
std::string describe_limit(const FdLimit& l) {
    return std::to_string(l.soft) + ", hard limit " +
           (l.hard == RLIM_INFINITY ? std::string("unlimited") : std::to_string(l.hard));
}

/// Serves one connection; the slot is released when it ends.
awaitable<void> serve_counted(tcp::socket socket, Worker& worker, ConnectionSlot slot) {
    (void)slot;
    co_await serve_client(std::move(socket), worker);
}

void start_session(Worker& worker, tcp::socket socket, ConnectionSlot slot) {
    asio::co_spawn(worker.io, serve_counted(std::move(socket), worker, std::move(slot)),
                   [](std::exception_ptr e) {
                       if (!e) {
                           return;
                       }
                       try {
                           std::rethrow_exception(e);
                       } catch (const std::exception& ex) {
                           spdlog::error("internal error in a connection: {} (please report)",
                                         ex.what());
                       }
                   });
}

bool out_of_descriptors(const error_code& ec) {
    return ec.category() == boost::system::system_category() &&
           (ec.value() == EMFILE || ec.value() == ENFILE);
}

}  // namespace

awaitable<void> Server::accept_loop() {
    for (;;) {
        error_code ec;
        tcp::socket socket =
            co_await acceptor_->async_accept(asio::redirect_error(use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor_->is_open()) {
            co_return;
        }
        if (!ec) {
            backoff_ = {};
            admit(std::move(socket));
            continue;
        }
        // Never retry at once: the listening socket stays readable, the loop would spin.
        accept_pause_->expires_after(on_accept_error(ec));
        co_await accept_pause_->async_wait(asio::redirect_error(use_awaitable, ec));
    }
}

std::chrono::milliseconds Server::on_accept_error(const error_code& ec) {
    const bool no_fds = out_of_descriptors(ec);
    const std::size_t shed =
        no_fds ? shed_backlog(acceptor_->native_handle(), spare_, kShedPerRound) : 0;
    backoff_ = std::clamp(backoff_ * 2, kMinBackoff, kMaxBackoff);
    shed_unreported_ += shed;
    const std::uint64_t n = accept_failures_.note(IntervalCounter::Clock::now());
    if (n && no_fds) {
        spdlog::warn(
            "accept: {}: out of file descriptors ({}) with {} connections open; "
            "{} connection(s) answered 503 since the last warning: lower "
            "max_connections or raise the limit",
            ec.message(), describe_limit(fd_limit_), connections_.live(),
            std::exchange(shed_unreported_, 0));
    } else if (n) {
        spdlog::warn("accept: {} ({} time(s) since the last warning); retrying in {} ms",
                     ec.message(), n, backoff_.count());
    }
    return backoff_;
}

void Server::admit(tcp::socket socket) {
    if (!connections_.try_acquire(budget_.max_connections)) {
        refuse_over_cap(std::move(socket));
        return;
    }
    ConnectionSlot slot(&connections_);
    Worker& worker = *workers_[next_worker_++ % workers_.size()];
    if (&worker == workers_[0].get()) {
        start_session(worker, std::move(socket), std::move(slot));
        return;
    }
    // Move the connection to the worker's io_context (a socket belongs to one).
    error_code ec;
    const auto protocol = socket.local_endpoint(ec).protocol();
    const int fd = socket.release(ec);
    asio::post(worker.io, [&worker, protocol, fd, slot = std::move(slot)]() mutable {
        tcp::socket moved(worker.io);
        error_code assign_ec;
        moved.assign(protocol, fd, assign_ec);
        if (assign_ec) {
            const UniqueFd lost(fd);
            spdlog::warn("a new connection could not join its worker: {}", assign_ec.message());
            return;
        }
        start_session(worker, std::move(moved), std::move(slot));
    });
}

void Server::refuse_over_cap(tcp::socket socket) {
    if (const std::uint64_t n = over_cap_.note(IntervalCounter::Clock::now())) {
        spdlog::warn(
            "max_connections {} reached: {} connection(s) answered 503 'too many "
            "connections' since the last warning (raise it with --max-connections or "
            "the max_connections key)",
            budget_.max_connections, n);
    }
    if (lingering_ >= budget_.lingering) {
        error_code ec;
        refuse_now(UniqueFd(socket.release(ec)),
                   too_many_connections_response(budget_.max_connections));
        return;
    }
    asio::co_spawn(workers_[0]->io, linger_refusal(std::move(socket)), asio::detached);
}

awaitable<void> Server::linger_refusal(tcp::socket socket) {
    ++lingering_;
    co_await refuse_gently(std::move(socket),
                           too_many_connections_response(budget_.max_connections), kRefusalLinger);
    --lingering_;
}

void Server::plan_limits(std::size_t workers) {
    const FdLimit& l = fd_limit_;
    if (!l.error.empty()) {
        spdlog::warn("could not raise the file descriptor limit: {}", l.error);
    }
    const auto& configured = settings_.max_connections;
    budget_ = plan_budget(
        l.soft, workers, configured ? std::optional<std::size_t>(configured->value) : std::nullopt);
    spdlog::info(
        "file descriptor limit {} (at start {}): max_connections {} [{}], {} idle "
        "upstream connections per worker",
        describe_limit(l), l.before, budget_.max_connections,
        configured ? configured->origin : "default", budget_.pool_per_worker);
    const char* advice =
        "raise the hard limit (ulimit -Hn, prlimit --nofile, systemd LimitNOFILE=)";
    if (configured && configured->value > budget_.fit) {
        spdlog::warn(
            "max_connections {} ({}) is more than the file descriptor limit ({}) allows: about "
            "{} connections at {} descriptors each; beyond that, connections may be refused or "
            "fail for lack of descriptors: {}",
            configured->value, configured->origin, describe_limit(l), budget_.fit,
            kFdsPerConnection, advice);
    } else if (!configured && budget_.fit < kLowFit) {
        spdlog::warn(
            "the file descriptor limit ({}) allows only {} connections at once "
            "(max_connections); more are answered 503: {}",
            describe_limit(l), budget_.max_connections, advice);
    }
}

}  // namespace lj::proxy
