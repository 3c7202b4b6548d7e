// SPDX-License-Identifier: Apache-2.0
#include "proxy/tls/stream.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <mbedtls/error.h>

#include "proxy/tls/tls_config.hpp"

namespace lj::proxy {
namespace {

// boost::system::error_category's destructor is protected and non-virtual by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class MbedCategory final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mbedtls"; }
    std::string message(int code) const override {
        char buf[256];
        mbedtls_strerror(code, buf, sizeof buf);
        return buf;
    }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& mbedtls_category() {
    static const MbedCategory category;
    return category;
}

struct Stream::Tls {
    std::unique_ptr<ServerConfig> server_conf;  ///< server side: freed after `ssl`
    mbedtls_ssl_context ssl;
    int fd = -1;
    std::string prefix;  ///< bytes read before the handshake, consumed first
    std::size_t prefix_used = 0;

    Tls() { mbedtls_ssl_init(&ssl); }
    ~Tls() { mbedtls_ssl_free(&ssl); }
    Tls(const Tls&) = delete;
    Tls& operator=(const Tls&) = delete;

    // BIO callbacks on the non-blocking socket: EAGAIN becomes WANT_READ/WANT_WRITE, which
    // the asynchronous operations turn into a wait for readiness.
    static int send(void* ctx, const unsigned char* buf, std::size_t len) {
        auto* self = static_cast<Tls*>(ctx);
        const ssize_t n = ::send(self->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) {
            return static_cast<int>(n);
        }
        return errno_code(MBEDTLS_ERR_SSL_WANT_WRITE, MBEDTLS_ERR_NET_SEND_FAILED);
    }
    static int recv(void* ctx, unsigned char* buf, std::size_t len) {
        auto* self = static_cast<Tls*>(ctx);
        if (self->prefix_used < self->prefix.size()) {
            const std::size_t n = std::min(len, self->prefix.size() - self->prefix_used);
            std::memcpy(buf, self->prefix.data() + self->prefix_used, n);
            self->prefix_used += n;
            return static_cast<int>(n);
        }
        const ssize_t n = ::recv(self->fd, buf, len, 0);
        if (n >= 0) {
            return static_cast<int>(n);
        }
        return errno_code(MBEDTLS_ERR_SSL_WANT_READ, MBEDTLS_ERR_NET_RECV_FAILED);
    }
    static int errno_code(int would_block, int failed) {
        const int err = errno;
        if (err == EAGAIN || err == EINTR) {  // EWOULDBLOCK == EAGAIN on Linux
            return would_block;
        }
        if (err == EPIPE || err == ECONNRESET) {
            return MBEDTLS_ERR_NET_CONN_RESET;
        }
        return failed;
    }
};

Stream::Stream(tcp::socket socket) : socket_(std::move(socket)) {}
Stream::~Stream() = default;
Stream::Stream(Stream&&) noexcept = default;

mbedtls_ssl_context* Stream::ssl() {
    return tls_ ? &tls_->ssl : nullptr;
}

int Stream::tls_read(void* data, std::size_t size) {
    return mbedtls_ssl_read(&tls_->ssl, static_cast<unsigned char*>(data), size);
}

int Stream::tls_write(const void* data, std::size_t size) {
    return mbedtls_ssl_write(&tls_->ssl, static_cast<const unsigned char*>(data), size);
}

awaitable<error_code> Stream::handshake() {
    for (;;) {
        const int r = mbedtls_ssl_handshake(&tls_->ssl);
        if (r == 0) {
            co_return error_code{};
        }
        if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE) {
            co_return mbedtls_error(r);
        }
        error_code ec;
        co_await socket_.async_wait(
            r == MBEDTLS_ERR_SSL_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write,
            asio::redirect_error(use_awaitable, ec));
        if (ec) {
            co_return ec;
        }
    }
}

awaitable<error_code> Stream::handshake_server(std::unique_ptr<ServerConfig> conf,
                                               const std::string& prefix) {
    tls_ = std::make_unique<Tls>();
    tls_->server_conf = std::move(conf);
    tls_->fd = socket_.native_handle();
    tls_->prefix = prefix;
    error_code ec;
    socket_.non_blocking(true, ec);
    if (const int r = mbedtls_ssl_setup(&tls_->ssl, &tls_->server_conf->get()); r != 0) {
        co_return mbedtls_error(r);
    }
    mbedtls_ssl_set_bio(&tls_->ssl, tls_.get(), &Tls::send, &Tls::recv, nullptr);
    co_return co_await handshake();
}

awaitable<error_code> Stream::handshake_client(const mbedtls_ssl_config& conf,
                                               const std::string& host) {
    tls_ = std::make_unique<Tls>();
    tls_->fd = socket_.native_handle();
    error_code ec;
    socket_.non_blocking(true, ec);
    if (const int r = mbedtls_ssl_setup(&tls_->ssl, &conf); r != 0) {
        co_return mbedtls_error(r);
    }
    // SNI and the name the certificate must carry; none for IP literals (RFC 6066 §3).
    if (const int r = mbedtls_ssl_set_hostname(&tls_->ssl, host.empty() ? nullptr : host.c_str());
        r != 0) {
        co_return mbedtls_error(r);
    }
    mbedtls_ssl_set_bio(&tls_->ssl, tls_.get(), &Tls::send, &Tls::recv, nullptr);
    co_return co_await handshake();
}

void Stream::close() {
    if (tls_) {
        mbedtls_ssl_close_notify(&tls_->ssl);  // best effort on a non-blocking socket
    }
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
}

}  // namespace lj::proxy
