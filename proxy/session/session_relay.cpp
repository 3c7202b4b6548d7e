// SPDX-License-Identifier: Apache-2.0
// Moving bytes between the client and the origin: HTTP bodies through one bounded buffer
// (relay), large plain bodies with splice(2) through a pipe, and raw bytes both ways for
// WebSocket upgrades and passthrough tunnels (splice/pump). Every transfer extends the
// session's idle deadline.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>

#include "proxy/base/fd.hpp"
#include "proxy/session/session_impl.hpp"

namespace lj::proxy {

template <bool isRequest>
awaitable<error_code> Session::write_header(Stream& to,
                                            http::serializer<isRequest, http::buffer_body>& sr,
                                            http::message<isRequest, http::buffer_body>& msg) {
    msg.body().data = nullptr;
    msg.body().size = 0;
    msg.body().more = true;
    error_code ec;
    co_await http::async_write_header(to, sr, asio::redirect_error(use_awaitable, ec));
    co_return ec;
}

template <bool isRequest>
awaitable<Session::RelayEnd> Session::relay(Stream& from, beast::flat_buffer& from_buf,
                                            http::parser<isRequest, http::buffer_body>& parser,
                                            Stream& to) {
    auto& msg = parser.get();
    http::serializer<isRequest, http::buffer_body> sr{msg};
    RelayEnd end;
    error_code& ec = end.ec;
    // Buffers sized for bulk transfer, held only while a body moves: an idle keep-alive
    // connection keeps none (Beast reads max(512, free capacity) bytes at a time).
    std::unique_ptr<char[]> chunk;
    if (!parser.is_done()) {
        chunk = std::make_unique_for_overwrite<char[]>(kRelayChunk);
        from_buf.reserve(kRelayChunk);
    }
    // Body bytes that arrived with the headers go out with them, in one write.
    if (parser.is_done() || from_buf.size() == 0) {
        ec = co_await write_header(to, sr, msg);
    }
    while (!ec && !parser.is_done()) {
        msg.body().data = chunk.get();
        msg.body().size = kRelayChunk;
        co_await http::async_read_some(from, from_buf, parser,
                                       asio::redirect_error(use_awaitable, ec));
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        const std::size_t n = kRelayChunk - msg.body().size;
        if (ec) {
            end.read_side = true;
            break;
        }
        if (n == 0 && !parser.is_done()) {
            if (!sr.is_header_done()) {
                ec = co_await write_header(to, sr, msg);
            }
            continue;
        }
        msg.body().data = n ? chunk.get() : nullptr;
        msg.body().size = n;
        msg.body().more = !parser.is_done();
        co_await http::async_write(to, sr, asio::redirect_error(use_awaitable, ec));
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        extend(shared_.timeouts.idle);
    }
    if (!ec && !sr.is_done()) {
        msg.body().data = nullptr;
        msg.body().size = 0;
        msg.body().more = false;
        co_await http::async_write(to, sr, asio::redirect_error(use_awaitable, ec));
        if (ec == http::error::need_buffer) {
            ec = {};
        }
    }
    if (chunk) {
        from_buf.shrink_to_fit();  // keeps what is buffered (a pipelined request), frees the rest
    }
    end.header_sent = sr.is_header_done();
    end.complete = !ec && parser.is_done();
    co_return end;
}

template awaitable<Session::RelayEnd> Session::relay<true>(Stream&, beast::flat_buffer&,
                                                           http::parser<true, http::buffer_body>&,
                                                           Stream&);
template awaitable<Session::RelayEnd> Session::relay<false>(Stream&, beast::flat_buffer&,
                                                            http::parser<false, http::buffer_body>&,
                                                            Stream&);

/// A large plain-HTTP body of known length between two plain sockets moves with splice(2)
/// through a pipe, without being copied through user space.
bool Session::spliceable(Stream& up, const http::response_parser<http::buffer_body>& rp) {
    const auto& res = rp.get();
    return !up.is_tls() && !client_.is_tls() && !rp.is_done() && !res.chunked() &&
           rp.content_length_remaining() && *rp.content_length_remaining() >= kSpliceMin;
}

awaitable<Session::RelayEnd> Session::splice_body(Stream& up, beast::flat_buffer& up_buf,
                                                  http::response_parser<http::buffer_body>& rp,
                                                  Stream& to) {
    auto& res = rp.get();
    std::uint64_t remaining = *rp.content_length_remaining();
    http::serializer<false, http::buffer_body> sr{res};
    RelayEnd end;
    error_code& ec = end.ec;
    ec = co_await write_header(to, sr, res);
    end.header_sent = !ec;
    const std::size_t buffered =
        static_cast<std::size_t>(std::min<std::uint64_t>(up_buf.size(), remaining));
    if (!ec && buffered) {  // body bytes read together with the headers
        co_await asio::async_write(to, beast::buffers_prefix(buffered, up_buf.data()),
                                   asio::redirect_error(use_awaitable, ec));
        up_buf.consume(buffered);
        remaining -= buffered;
    }
    int fds[2];
    if (ec || ::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        if (!ec) {
            ec = error_code(errno, boost::system::system_category());
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
            ec = error_code(errno, boost::system::system_category());
            end.read_side = true;
        } else {
            remaining -= static_cast<std::uint64_t>(n);
            ec = co_await drain_pipe(pipe_r.get(), static_cast<std::size_t>(n), to);
            extend(shared_.timeouts.idle);
        }
    }
    end.complete = !ec;
    co_return end;
}

/// Moves `n` bytes from the pipe to the socket.
awaitable<error_code> Session::drain_pipe(int pipe_r, std::size_t n, Stream& to) {
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

awaitable<void> Session::pump(Stream& from, Stream& to, bool& done) {
    std::array<char, kChunk> buf{};
    error_code ec;
    while (!done) {
        const std::size_t n = co_await from.async_read_some(
            asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
        if (ec) {
            break;
        }
        co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                   asio::redirect_error(use_awaitable, ec));
        if (ec) {
            break;
        }
        extend(shared_.timeouts.idle);
    }
    done = true;
    from.close();
    to.close();
}

/// Relays bytes both ways (WebSocket after 101, passthrough tunnels) until either side ends.
/// Bytes already buffered on either side are delivered first.
awaitable<void> Session::splice(Stream& a, beast::flat_buffer& a_buf, Stream& b,
                                beast::flat_buffer& b_buf) {
    error_code ec;
    if (a_buf.size()) {
        co_await asio::async_write(b, a_buf.data(), asio::redirect_error(use_awaitable, ec));
        a_buf.consume(a_buf.size());
    }
    if (!ec && b_buf.size()) {
        co_await asio::async_write(a, b_buf.data(), asio::redirect_error(use_awaitable, ec));
        b_buf.consume(b_buf.size());
    }
    if (ec) {
        co_return;
    }
    arm(Phase::Relay, shared_.timeouts.idle);
    // Each direction ends by closing both streams, which ends the other direction too; the
    // streams must outlive both, so this waits until the spawned direction has finished.
    struct Both {
        bool done = false;
        bool other_finished = false;
        asio::steady_timer wake;
        explicit Both(asio::io_context& io) : wake(io, Clock::time_point::max()) {}
    };
    auto both = std::make_shared<Both>(worker_.io);
    asio::co_spawn(
        worker_.io,
        [this, &a, &b, both]() -> awaitable<void> {
            co_await pump(b, a, both->done);
            both->other_finished = true;
            both->wake.cancel();
        },
        asio::detached);
    co_await pump(a, b, both->done);
    while (!both->other_finished) {
        co_await both->wake.async_wait(asio::redirect_error(use_awaitable, ec));
    }
}

}  // namespace lj::proxy
