// SPDX-License-Identifier: Apache-2.0
// Stream: a TCP socket with an optional TLS layer (mbedTLS, server or client side), as one
// concrete AsyncReadStream/AsyncWriteStream type, so that Beast parses and serializes HTTP over
// plain and intercepted connections with the same code. mbedTLS does its I/O on the
// non-blocking socket itself (BIO callbacks); the asynchronous operations retry the mbedTLS
// call after waiting for socket readiness, so no bytes are copied between buffers. Bytes that
// were read ahead of the handshake (the CONNECT request's buffer) are fed to mbedTLS first.
//
// Thread-safety: like an Asio socket — one read and one write may be outstanding at a time,
// from the strand/io_context that owns the stream.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "proxy/net.hpp"

namespace lj::proxy {

class ServerConfig;

/// std::error_category for mbedTLS error codes (negative ints); message() is mbedtls_strerror.
const boost::system::error_category& mbedtls_category();
inline error_code mbedtls_error(int code) {
    return {code, mbedtls_category()};
}

class Stream {
  public:
    using executor_type = tcp::socket::executor_type;

    explicit Stream(tcp::socket socket);
    ~Stream();
    Stream(Stream&&) noexcept;
    Stream& operator=(Stream&&) = delete;

    executor_type get_executor() { return socket_.get_executor(); }
    tcp::socket& socket() { return socket_; }
    bool is_tls() const { return tls_ != nullptr; }

    /// Server-side handshake with `conf`, which the stream keeps as long as its TLS layer
    /// (close_notify and mbedtls_ssl_free read it); `prefix` holds bytes already read from the
    /// socket that belong to the ClientHello.
    awaitable<error_code> handshake_server(std::unique_ptr<ServerConfig> conf,
                                           const std::string& prefix);
    /// Client-side handshake with SNI/verification name `host` (empty for IP literals, whose
    /// certificate the caller checks itself).
    awaitable<error_code> handshake_client(const mbedtls_ssl_config& conf, const std::string& host);
    /// The mbedTLS context after a handshake (SNI, peer certificate, ALPN), else null.
    mbedtls_ssl_context* ssl();

    /// Sends close_notify (best effort) and closes the socket.
    void close();

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token);
    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token);

  private:
    struct Tls;
    template <bool Read>
    struct TlsOp;
    /// One mbedtls_ssl_read/_write attempt: > 0 bytes, or a negative mbedTLS code.
    int tls_read(void* data, std::size_t size);
    int tls_write(const void* data, std::size_t size);
    awaitable<error_code> handshake();

    tcp::socket socket_;
    std::unique_ptr<Tls> tls_;
};

// One TLS read or write: try mbedTLS; on WANT_READ/WANT_WRITE wait for the socket and retry.
// A result available at once is delivered through post(), never inline.
template <bool Read>
struct Stream::TlsOp {
    Stream* stream;
    asio::mutable_buffer buffer;
    bool waited = false;
    int result = 0;
    bool done = false;

    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t = 0) {
        if (done) {
            return finish(self);
        }
        if (ec) {
            return self.complete(ec, 0);
        }
        // A zero-length transfer completes at once (mbedtls_ssl_read would report 0 = EOF).
        const int r = buffer.size() == 0 ? kEmpty
                      : Read             ? stream->tls_read(buffer.data(), buffer.size())
                                         : stream->tls_write(buffer.data(), buffer.size());
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
            waited = true;
            const auto what =
                r == MBEDTLS_ERR_SSL_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write;
            return stream->socket_.async_wait(what, std::move(self));
        }
        result = r;
        done = true;
        if (!waited) {
            return asio::post(stream->get_executor(), std::move(self));
        }
        finish(self);
    }

    static constexpr int kEmpty = 1 << 30;

    template <class Self>
    void finish(Self& self) {
        if (result == kEmpty) {
            return self.complete({}, 0);
        }
        if (result > 0) {
            return self.complete({}, static_cast<std::size_t>(result));
        }
        if (result == 0 || result == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            return self.complete(asio::error::eof, 0);
        }
        if (result == MBEDTLS_ERR_NET_CONN_RESET) {
            return self.complete(asio::error::connection_reset, 0);
        }
        self.complete(mbedtls_error(result), 0);
    }
};

template <class MutableBuffers, class Token>
auto Stream::async_read_some(const MutableBuffers& buffers, Token&& token) {
    if (!tls_) {
        return socket_.async_read_some(buffers, std::forward<Token>(token));
    }
    const asio::mutable_buffer first = beast::buffers_front(buffers);
    return asio::async_compose<Token, void(error_code, std::size_t)>(TlsOp<true>{this, first},
                                                                     token, socket_);
}

template <class ConstBuffers, class Token>
auto Stream::async_write_some(const ConstBuffers& buffers, Token&& token) {
    if (!tls_) {
        return socket_.async_write_some(buffers, std::forward<Token>(token));
    }
    const asio::const_buffer first = beast::buffers_front(buffers);
    // mbedTLS never writes through this pointer; TlsOp holds one buffer type for both ways.
    const asio::mutable_buffer view(const_cast<void*>(first.data()), first.size());
    return asio::async_compose<Token, void(error_code, std::size_t)>(TlsOp<false>{this, view},
                                                                     token, socket_);
}

}  // namespace lj::proxy
