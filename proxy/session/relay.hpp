// SPDX-License-Identifier: Apache-2.0
// Moving bytes between two streams, as free coroutines over any pair of Asio byte streams
// (the product's Stream, or beast::test::stream in the unit tests): one HTTP message (head,
// then its body through one bounded buffer), large plain bodies with splice(2) through a pipe
// (sockets only), and raw bytes both ways for WebSocket upgrades and passthrough tunnels.
// Every transfer calls `progress()`, which extends the connection's idle deadline. They know
// nothing of policy or audit: how a relay ended is returned, and the caller decides.
//
// Thread-safety: the streams belong to one io_context thread.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <memory>

#include "proxy/net.hpp"
#include "proxy/tls/stream.hpp"

namespace lj::proxy {

inline constexpr std::size_t kTunnelChunk = 16 * 1024;  ///< raw tunnel reads
inline constexpr std::size_t kRelayChunk = 64 * 1024;   ///< body relay buffer, per body
inline constexpr std::size_t kSpliceMin = 256 * 1024;   ///< plain bodies this large use splice(2)

/// How a relay of one message ended: `ec` is empty when the message moved whole.
struct RelayEnd {
    error_code ec;
    bool complete = false;     ///< the whole message moved
    bool read_side = false;    ///< the error came from the stream read (else: written)
    bool header_sent = false;  ///< the head reached the stream written
};

/// Writes a whole message (a response of our own, an interim 1xx). Returns the write's error.
template <class To, class Message>
awaitable<error_code> write_message(To& to, Message& msg) {
    error_code ec;
    co_await http::async_write(to, msg, asio::redirect_error(use_awaitable, ec));
    co_return ec;
}

/// Writes only the head of `msg` (its body is sent afterwards, or is the tunnel's bytes).
template <class To, bool isRequest, class Body>
awaitable<error_code> write_head(To& to, http::message<isRequest, Body>& msg) {
    http::serializer<isRequest, Body> sr{msg};
    sr.split(true);
    error_code ec;
    co_await http::async_write_header(to, sr, asio::redirect_error(use_awaitable, ec));
    co_return ec;
}

namespace detail {

// Not coroutines: each returns the write's awaitable for the caller to co_await (with `ec`
// in the caller's frame), so a relayed message costs no coroutine frame per write.

/// Writes the head of `msg` (its body follows through the same serializer).
template <class To, bool isRequest>
awaitable<std::size_t> write_header(To& to, http::serializer<isRequest, http::buffer_body>& sr,
                                    http::message<isRequest, http::buffer_body>& msg,
                                    error_code& ec) {
    msg.body().data = nullptr;
    msg.body().size = 0;
    msg.body().more = true;
    return http::async_write_header(to, sr, asio::redirect_error(use_awaitable, ec));
}

/// Writes one chunk of body (or the end, with n == 0 and more == false); `ec` is then
/// http::error::need_buffer when the chunk went out whole (see write_chunk_done()).
template <class To, bool isRequest>
awaitable<std::size_t> write_chunk(To& to, http::serializer<isRequest, http::buffer_body>& sr,
                                   http::message<isRequest, http::buffer_body>& msg, char* data,
                                   std::size_t n, bool more, error_code& ec) {
    msg.body().data = n ? data : nullptr;
    msg.body().size = n;
    msg.body().more = more;
    return http::async_write(to, sr, asio::redirect_error(use_awaitable, ec));
}

/// need_buffer after a write of a buffer_body chunk means it went out whole.
inline void write_chunk_done(error_code& ec) {
    if (ec == http::error::need_buffer) {
        ec = {};
    }
}

}  // namespace detail

/// Relays one message whose head `parser` has read from `from`: the head (with the body bytes
/// that arrived with it, in one write), then the body chunk by chunk through a kRelayChunk
/// buffer held only while the body moves (an idle keep-alive connection keeps none), as the
/// serializer frames it. `from_buf` keeps what follows the message (a pipelined request).
template <bool isRequest, class From, class To, class Progress>
awaitable<RelayEnd> relay_message(From& from, beast::flat_buffer& from_buf,
                                  http::parser<isRequest, http::buffer_body>& parser, To& to,
                                  Progress progress) {
    auto& msg = parser.get();
    http::serializer<isRequest, http::buffer_body> sr{msg};
    RelayEnd end;
    error_code& ec = end.ec;
    std::unique_ptr<char[]> chunk;
    if (!parser.is_done()) {
        chunk = std::make_unique_for_overwrite<char[]>(kRelayChunk);
        from_buf.reserve(kRelayChunk);  // Beast reads max(512, free capacity) at a time
    }
    if (parser.is_done() || from_buf.size() == 0) {
        co_await detail::write_header(to, sr, msg, ec);
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
                co_await detail::write_header(to, sr, msg, ec);
            }
            continue;
        }
        co_await detail::write_chunk(to, sr, msg, chunk.get(), n, !parser.is_done(), ec);
        detail::write_chunk_done(ec);
        progress();
    }
    if (!ec && !sr.is_done()) {
        co_await detail::write_chunk(to, sr, msg, nullptr, 0, false, ec);
        detail::write_chunk_done(ec);
    }
    if (chunk) {
        from_buf.shrink_to_fit();  // keeps what is buffered, frees the rest
    }
    end.header_sent = sr.is_header_done();
    end.complete = !ec && parser.is_done();
    co_return end;
}

/// True for a large plain-HTTP response body of known length between two plain sockets,
/// which splice_body() moves without copying it through user space.
inline bool spliceable(const Stream& from, const Stream& to,
                       const http::response_parser<http::buffer_body>& rp) {
    return !from.is_tls() && !to.is_tls() && !rp.is_done() && !rp.get().chunked() &&
           rp.content_length_remaining() && *rp.content_length_remaining() >= kSpliceMin;
}

/// The response body from `up` to `to` with splice(2) through a pipe (after its head and the
/// body bytes read with it); for spliceable() bodies only.
awaitable<RelayEnd> splice_body(Stream& up, beast::flat_buffer& up_buf,
                                http::response_parser<http::buffer_body>& rp, Stream& to,
                                std::function<void()> progress);

/// Copies bytes from `from` to `to` until either side ends (or `done` is set by the other
/// direction); then closes both, which ends the other direction too.
template <class From, class To, class Progress>
awaitable<void> pump(From& from, To& to, bool& done, Progress progress) {
    std::array<char, kTunnelChunk> buf{};
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
        progress();
    }
    done = true;
    from.close();
    to.close();
}

/// Delivers the bytes already read ahead on either side (`a_buf` to `b`, `b_buf` to `a`)
/// before a raw relay begins. Returns the first write error.
template <class A, class B>
awaitable<error_code> deliver_buffered(A& a, beast::flat_buffer& a_buf, B& b,
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
    co_return ec;
}

/// Relays raw bytes both ways (WebSocket after 101, passthrough tunnels) until either side
/// ends. Returns when both directions have finished (both streams closed), so the streams may
/// go then.
template <class A, class B, class Progress>
awaitable<void> relay_both_ways(A& a, B& b, Progress progress) {
    struct Both {
        bool done = false;
        bool other_finished = false;
        asio::steady_timer wake;
        explicit Both(const typename A::executor_type& ex)
            : wake(ex, asio::steady_timer::time_point::max()) {}
    };
    auto both = std::make_shared<Both>(a.get_executor());
    asio::co_spawn(
        a.get_executor(),
        [&a, &b, both, progress]() -> awaitable<void> {
            co_await pump(b, a, both->done, progress);
            both->other_finished = true;
            both->wake.cancel();
        },
        asio::detached);
    co_await pump(a, b, both->done, progress);
    error_code ec;
    while (!both->other_finished) {
        co_await both->wake.async_wait(asio::redirect_error(use_awaitable, ec));
    }
}

}  // namespace lj::proxy
