// SPDX-License-Identifier: Apache-2.0
#include "proxy/server/admission.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/session/upstream.hpp"

namespace lj::proxy {
namespace {

constexpr std::size_t kReservedBase = 32;
constexpr std::size_t kReservedPerWorker = 4;

std::string response_503(const std::string& body) {
    return "HTTP/1.1 503 Service Unavailable\r\n"
           "Server: landjail-proxy\r\n"
           "Content-Type: text/plain\r\n"
           "Retry-After: 1\r\n"
           "Connection: close\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// Reads and discards what is readable now (at most 64 KiB), without blocking.
void discard_readable(int fd) {
    char buf[4096];
    for (int i = 0; i < 16; ++i) {
        if (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) {
            return;
        }
    }
}

}  // namespace

FdLimit raise_fd_limit() {
    FdLimit out;
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        out.error = std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
        return out;
    }
    out.before = out.soft = rl.rlim_cur;
    out.hard = rl.rlim_max;
    const rlim_t want = std::min<rlim_t>(rl.rlim_max, kMaxFdLimit);
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) {
        return out;
    }
    rl.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        out.error =
            "setrlimit(RLIMIT_NOFILE, " + std::to_string(want) + "): " + std::strerror(errno);
        return out;
    }
    out.soft = want;
    return out;
}

Budget plan_budget(std::uint64_t fd_limit, std::size_t workers,
                   std::optional<std::size_t> configured) {
    const std::uint64_t limit = std::min<std::uint64_t>(fd_limit, kMaxFdLimit);
    const std::uint64_t reserved = kReservedBase + kReservedPerWorker * workers;
    const std::size_t usable = limit > reserved ? limit - reserved : 0;
    const std::size_t pool = std::min(kMaxIdlePerWorker * workers, usable / 8);
    Budget b;
    b.lingering = std::min(kMaxLingering, usable / 16);
    b.fit = (usable - pool - b.lingering) / kFdsPerConnection;
    b.pool_per_worker = workers ? pool / workers : 0;
    b.max_connections =
        configured ? *configured : std::clamp<std::size_t>(b.fit, 1, kDefaultMaxConnections);
    return b;
}

std::uint64_t IntervalCounter::note(Clock::time_point now, std::uint64_t n) {
    total_ += n;
    pending_ += n;
    if (last_ && now - *last_ < interval_) {
        return 0;
    }
    last_ = now;
    return std::exchange(pending_, 0);
}

std::string too_many_connections_response(std::size_t max_connections) {
    return response_503("landjail: too many connections (max_connections " +
                        std::to_string(max_connections) + ")\n");
}

std::string out_of_descriptors_response() {
    return response_503("landjail: too many connections (the proxy is out of file descriptors)\n");
}

void refuse_now(UniqueFd fd, const std::string& response) {
    // A fresh connection's send buffer takes a few hundred bytes at once.
    (void)!::send(fd.get(), response.data(), response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    discard_readable(fd.get());
    ::shutdown(fd.get(), SHUT_RDWR);
}

awaitable<void> refuse_gently(tcp::socket socket, std::string response,
                              std::chrono::milliseconds linger) {
    const int fd = socket.native_handle();
    (void)!::send(fd, response.data(), response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    error_code ec;
    socket.shutdown(tcp::socket::shutdown_send, ec);
    Deadline deadline(socket.get_executor(), linger, [&socket] {
        error_code ignored;
        socket.close(ignored);
    });
    char buf[4096];
    while (!ec) {
        co_await socket.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    }
}

SpareFd::SpareFd() {
    restore();
}

bool SpareFd::release() {
    const bool had = fd_.valid();
    fd_.reset();
    return had;
}

void SpareFd::restore() {
    if (!fd_.valid()) {
        fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    }
}

std::size_t shed_backlog(int listener, SpareFd& spare, std::size_t max) {
    std::size_t refused = 0;
    while (refused < max) {
        spare.release();
        UniqueFd conn(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!conn.valid()) {
            break;  // EAGAIN: nothing pending; EMFILE even so: another thread took the slot
        }
        refuse_now(std::move(conn), out_of_descriptors_response());
        ++refused;
    }
    spare.restore();
    return refused;
}

}  // namespace lj::proxy
