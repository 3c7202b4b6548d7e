// SPDX-License-Identifier: Apache-2.0
#include "proxy/session/upstream.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <optional>

#include "policy/text.hpp"

namespace lj::proxy {
namespace {

std::string pool_key(const std::string& scheme, const policy::Host& host, std::uint16_t port) {
    return scheme + "://" + host.authority() + ":" + std::to_string(port);
}

/// True when an idle pooled connection is still open and has nothing unexpected to read.
bool still_idle(Stream& s) {
    char byte;
    const ssize_t n = ::recv(s.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && errno == EAGAIN;  // EWOULDBLOCK == EAGAIN on Linux
}

std::string verify_detail(Stream& s) {
    const uint32_t flags = mbedtls_ssl_get_verify_result(s.ssl());
    if (flags == 0 || flags == static_cast<uint32_t>(-1)) {
        return {};
    }
    char buf[512];
    const int n = mbedtls_x509_crt_verify_info(buf, sizeof buf, "", flags);
    std::string out(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    for (char& c : out) {
        c = c == '\n' ? ';' : c;
    }
    while (!out.empty() && (out.back() == ';' || out.back() == ' ')) {
        out.pop_back();
    }
    return "certificate verification failed: " + out;
}

}  // namespace

Deadline::Deadline(asio::any_io_executor ex, std::chrono::milliseconds timeout,
                   std::function<void()> on_expire)
    : state_(std::make_shared<State>(std::move(ex))) {
    state_->on_expire = std::move(on_expire);
    state_->timer.expires_after(timeout);
    state_->timer.async_wait([state = state_](const error_code& ec) {
        if (!ec && state->on_expire) {
            state->expired = true;
            state->on_expire();
        }
    });
}

Deadline::~Deadline() {
    state_->on_expire = nullptr;  // the session may be gone when the handler runs
    state_->timer.cancel();
}

Upstream::Upstream(asio::io_context& io, TlsContext& tls, Options options)
    : io_(io), tls_(tls), options_(std::move(options)), sweep_timer_(io) {
    for (const ResolveOverride& r : options_.resolve) {  // parse_resolve checked each address
        overrides_.push_back({r.host, r.port, asio::ip::make_address(r.address), r.to_port});
    }
}

awaitable<std::vector<tcp::endpoint>> Upstream::resolve(const policy::Host& host,
                                                        std::uint16_t port,
                                                        UpstreamFailure& failure) {
    for (const Override& r : overrides_) {
        if (r.host == host.text && r.port == port) {
            co_return std::vector<tcp::endpoint>{{r.address, r.to_port}};
        }
    }
    if (host.kind != policy::HostKind::Name) {
        co_return std::vector<tcp::endpoint>{{asio::ip::make_address(host.text), port}};
    }
    tcp::resolver resolver(io_);
    Deadline deadline(io_.get_executor(), options_.connect_timeout, [&] { resolver.cancel(); });
    error_code ec;
    const std::string service = std::to_string(port);
    auto results = co_await resolver.async_resolve(host.text, service,
                                                   asio::redirect_error(use_awaitable, ec));
    std::vector<tcp::endpoint> out;
    if (ec) {
        failure = {"resolve", deadline.expired() ? "timed out" : ec.message(), deadline.expired()};
        co_return out;
    }
    for (const auto& entry : results) {
        out.push_back(entry.endpoint());
    }
    co_return out;
}

awaitable<std::unique_ptr<Stream>> Upstream::connect_tcp(const policy::Host& host,
                                                         std::uint16_t port,
                                                         UpstreamFailure& failure) {
    const std::vector<tcp::endpoint> endpoints = co_await resolve(host, port, failure);
    if (endpoints.empty()) {
        if (failure.step.empty()) {
            failure = {"resolve", "no address for " + host.text, false};
        }
        co_return nullptr;
    }
    tcp::socket socket(io_);
    Deadline deadline(io_.get_executor(), options_.connect_timeout, [&] {
        error_code ignored;
        socket.close(ignored);
    });
    error_code ec;
    co_await asio::async_connect(socket, endpoints, asio::redirect_error(use_awaitable, ec));
    if (ec) {
        failure = {"connect", deadline.expired() ? "timed out" : ec.message(), deadline.expired()};
        co_return nullptr;
    }
    socket.set_option(tcp::no_delay(true), ec);
    co_return std::make_unique<Stream>(std::move(socket));
}

awaitable<std::unique_ptr<Stream>> Upstream::acquire(const std::string& scheme,
                                                     const policy::Host& host, std::uint16_t port,
                                                     UpstreamFailure& failure, bool& reused) {
    const std::string key = pool_key(scheme, host, port);
    if (auto idle = take_idle(key)) {
        reused = true;
        co_return idle;
    }
    reused = false;
    const bool tls = scheme == "https";
    if (tls && host.kind != policy::HostKind::Name) {
        // mbedTLS 2.28 cannot match iPAddress subjectAltNames, and verification is never skipped.
        failure = {"tls", "cannot verify a certificate for an IP address; use a host name", false};
        co_return nullptr;
    }
    auto stream = co_await connect_tcp(host, port, failure);
    if (!stream || !tls) {
        co_return stream;
    }
    Stream* raw = stream.get();
    Deadline deadline(io_.get_executor(), options_.connect_timeout, [raw] { raw->close(); });
    const error_code ec = co_await stream->handshake_client(tls_.client(), host.text);
    if (ec) {
        std::string detail = verify_detail(*stream);
        failure = {"tls",
                   detail.empty() ? (deadline.expired() ? "timed out" : ec.message()) : detail,
                   deadline.expired()};
        co_return nullptr;
    }
    co_return stream;
}

std::unique_ptr<Stream> Upstream::take_idle(const std::string& key) {
    auto it = idle_.find(key);
    if (it == idle_.end()) {
        return nullptr;
    }
    const auto now = Clock::now();
    std::unique_ptr<Stream> found;
    while (!found && !it->second.empty()) {
        Idle idle = std::move(it->second.back());  // the most recently used
        it->second.pop_back();
        --idle_count_;
        error_code ec;
        idle.stream->socket().cancel(ec);  // its watch; the handler sees operation_aborted
        if (now - idle.since < options_.max_idle_age && still_idle(*idle.stream)) {
            found = std::move(idle.stream);
        } else {
            idle.stream->close();
        }
    }
    if (it->second.empty()) {
        idle_.erase(it);
    }
    return found;
}

void Upstream::release(const std::string& scheme, const policy::Host& host, std::uint16_t port,
                       std::unique_ptr<Stream> stream) {
    const std::string key = pool_key(scheme, host, port);
    auto it = idle_.find(key);
    const std::size_t for_key = it == idle_.end() ? 0 : it->second.size();
    if (stopped_ || for_key >= options_.max_idle_per_key ||
        idle_count_ >= options_.max_idle_total) {
        stream->close();
        return;
    }
    const std::uint64_t id = ++next_id_;
    watch(key, id, *stream);
    const auto now = Clock::now();
    idle_[key].push_back({std::move(stream), now, id});
    ++idle_count_;
    arm_sweep(now + options_.max_idle_age);
}

void Upstream::watch(const std::string& key, std::uint64_t id, Stream& stream) {
    // Nothing is due on an idle connection: readable means the origin closed it (EOF, RST,
    // a TLS close_notify) or sent bytes that no request asked for. Either way it is unusable.
    stream.socket().async_wait(tcp::socket::wait_read, [this, key, id](const error_code& ec) {
        if (ec != asio::error::operation_aborted) {
            drop(key, id);
        }
    });
}

void Upstream::drop(const std::string& key, std::uint64_t id) {
    auto it = idle_.find(key);
    if (it == idle_.end()) {
        return;
    }
    auto& list = it->second;
    const auto entry =
        std::find_if(list.begin(), list.end(), [id](const Idle& i) { return i.id == id; });
    if (entry == list.end()) {
        return;  // taken already
    }
    entry->stream->close();
    list.erase(entry);
    --idle_count_;
    if (list.empty()) {
        idle_.erase(it);
    }
}

void Upstream::arm_sweep(Clock::time_point at) {
    if (sweep_armed_ || stopped_) {
        return;  // an armed sweep is due for an older connection, and re-arms for the rest
    }
    sweep_armed_ = true;
    sweep_timer_.expires_at(at);
    sweep_timer_.async_wait([this](const error_code& ec) {
        sweep_armed_ = false;
        if (!ec) {
            sweep();
        }
    });
}

void Upstream::sweep() {
    const auto now = Clock::now();
    std::optional<Clock::time_point> next;
    for (auto it = idle_.begin(); it != idle_.end();) {
        auto& list = it->second;
        while (!list.empty() && now - list.front().since >= options_.max_idle_age) {
            list.front().stream->close();  // closing cancels its watch
            list.erase(list.begin());
            --idle_count_;
        }
        if (!list.empty() && (!next || list.front().since < *next)) {
            next = list.front().since;
        }
        it = list.empty() ? idle_.erase(it) : std::next(it);
    }
    if (next) {
        arm_sweep(*next + options_.max_idle_age);
    }
}

void Upstream::clear() {
    stopped_ = true;
    idle_.clear();  // closes the streams, which cancels their watches
    idle_count_ = 0;
    sweep_timer_.cancel();
}

}  // namespace lj::proxy
