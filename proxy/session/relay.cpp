// SPDX-License-Identifier: Apache-2.0
// splice(2) for large plain bodies between two sockets; the rest of the relay is templates
// in relay.hpp.
#include "proxy/session/relay.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "proxy/base/fd.hpp"

namespace lj::proxy {
namespace {

error_code errno_error() {
    return error_code(errno, boost::system::system_category());
}

/// Moves `n` bytes from the pipe to the socket.
awaitable<error_code> drain_pipe(int pipe_r, std::size_t n, Stream& to) {
    error_code ec;
    while (!ec && n > 0) {
        const ssize_t m = ::splice(pipe_r, nullptr, to.socket().native_handle(), nullptr, n,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (m < 0 && errno == EAGAIN) {
            co_await to.socket().async_wait(tcp::socket::wait_write,
                                            asio::redirect_error(use_awaitable, ec));
        } else if (m <= 0) {
            ec = error_code(m < 0 ? errno : EPIPE, boost::system::system_category());
        } else {
            n -= static_cast<std::size_t>(m);
        }
    }
    co_return ec;
}

/// The head, and the body bytes that were read with it, to `to`; the body bytes left.
awaitable<std::uint64_t> send_head_and_buffered(Stream& to, beast::flat_buffer& up_buf,
                                                http::response_parser<http::buffer_body>& rp,
                                                RelayEnd& end) {
    auto& res = rp.get();
    std::uint64_t remaining = *rp.content_length_remaining();
    http::serializer<false, http::buffer_body> sr{res};
    co_await detail::write_header(to, sr, res, end.ec);
    end.header_sent = !end.ec;
    const std::size_t buffered =
        static_cast<std::size_t>(std::min<std::uint64_t>(up_buf.size(), remaining));
    if (!end.ec && buffered) {
        co_await asio::async_write(to, beast::buffers_prefix(buffered, up_buf.data()),
                                   asio::redirect_error(use_awaitable, end.ec));
        up_buf.consume(buffered);
        remaining -= buffered;
    }
    co_return remaining;
}

}  // namespace

awaitable<RelayEnd> splice_body(Stream& up, beast::flat_buffer& up_buf,
                                http::response_parser<http::buffer_body>& rp, Stream& to,
                                std::function<void()> progress) {
    RelayEnd end;
    error_code& ec = end.ec;
    std::uint64_t remaining = co_await send_head_and_buffered(to, up_buf, rp, end);
    int fds[2];
    if (ec || ::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        if (!ec) {
            ec = errno_error();
        }
        co_return end;
    }
    const UniqueFd pipe_r(fds[0]), pipe_w(fds[1]);
    ::fcntl(pipe_w.get(), F_SETPIPE_SZ, static_cast<int>(kSpliceMin));  // best effort
    up.socket().non_blocking(true, ec);
    to.socket().non_blocking(true, ec);
    ec = {};
    while (!ec && remaining > 0) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, kSpliceMin));
        const ssize_t n = ::splice(up.socket().native_handle(), nullptr, pipe_w.get(), nullptr,
                                   want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n == 0) {
            ec = http::error::partial_message;  // the origin closed early
            end.read_side = true;
        } else if (n < 0 && errno == EAGAIN) {
            co_await up.socket().async_wait(tcp::socket::wait_read,
                                            asio::redirect_error(use_awaitable, ec));
            end.read_side = static_cast<bool>(ec);
        } else if (n < 0) {
            ec = errno_error();
            end.read_side = true;
        } else {
            remaining -= static_cast<std::uint64_t>(n);
            ec = co_await drain_pipe(pipe_r.get(), static_cast<std::size_t>(n), to);
            progress();
        }
    }
    end.complete = !ec;
    co_return end;
}

}  // namespace lj::proxy
