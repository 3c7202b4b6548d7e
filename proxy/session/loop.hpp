// SPDX-License-Identifier: Apache-2.0
// The request loop of one client connection, where every request starts: read a head under
// the header deadline, refuse what cannot be read (431, 400) or whose framing is ambiguous
// (400), then hand a CONNECT to the tunnel (tunnel.hpp) and any other request to one exchange
// (exchange.hpp). Once a CONNECT tunnel is open, the loop serves the requests inside it
// (origin-form, for the tunnel's origin) until the connection ends. A request goes
// loop -> tunnel or loop -> exchange -> relay, and the loop reads the next one.
//
// Thread-safety: as Connection.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "proxy/net.hpp"
#include "proxy/session/connection.hpp"
#include "proxy/session/exchange.hpp"
#include "proxy/session/http_fields.hpp"
#include "proxy/session/request_head.hpp"
#include "proxy/session/tunnel.hpp"

namespace lj::proxy {

/// The answer to a head that could not be read (`ec`): 431 over the header limit, 400 when it
/// is malformed; none (nullopt) when the client closed, reset or timed out (`timed_out`)
/// while sending it. Pure.
std::optional<Refusal> unreadable_head(const error_code& ec, bool timed_out, bool head_request);

/// The 400 for a head whose framing is ambiguous (`why`: framing_problem()). Pure.
Refusal framing_refusal(const http::request_header<>& req, std::string_view why, bool head_request);

// The refusals run in coroutines of their own, so that the request loop's frame, which every
// idle keep-alive connection holds, does not carry them.

/// Answers a head that could not be read (`ec`), when unreadable_head() says so.
template <class W>
awaitable<void> answer_unreadable(Connection<W>& c, error_code ec) {
    if (auto refusal = unreadable_head(ec, c.timed_out(), c.head_request)) {
        co_await c.refuse(std::move(*refusal));
    }
}

/// Refuses a head whose framing is ambiguous (`why`): whoever reads it next might read
/// another request out of its body.
template <class W>
awaitable<void> refuse_framing(Connection<W>& c, const http::request_header<>& req,
                               std::string why) {
    co_await c.refuse(framing_refusal(req, why, c.head_request));
}

/// The requests of one connection: on the listener (absolute-form requests and CONNECT),
/// then, after a CONNECT, inside its tunnel. Each head is read under the header deadline.
/// Returns when the connection is done.
template <class W>
awaitable<void> serve_requests(Connection<W>& c) {
    std::optional<TunnelOrigin> origin;  ///< inside a tunnel: where its requests must go
    PendingRefusal pending(c.trail);     ///< an intercepted denied tunnel's CONNECT event
    for (;;) {
        if (c.worker.draining) {
            co_return;
        }
        http::request_parser<http::buffer_body> parser;
        parser.header_limit(kHeaderLimit);
        parser.body_limit(std::numeric_limits<std::uint64_t>::max());
        c.arm(Phase::Request, c.shared.timeouts.header);
        c.head_request = false;  // not the previous request's: an unreadable head gets its body
        c.waiting_for_request = true;
        error_code ec;
        co_await http::async_read_header(c.client, c.client_buf, parser,
                                         asio::redirect_error(use_awaitable, ec));
        c.waiting_for_request = false;
        if (ec) {
            co_await answer_unreadable(c, ec);
            co_return;
        }
        c.head_request = parser.get().method() == http::verb::head;
        if (std::string why = framing_problem(parser.get()); !why.empty()) {
            co_await refuse_framing(c, parser.get(), std::move(why));
            co_return;
        }
        if (!origin && parser.get().method() == http::verb::connect) {
            origin = co_await open_tunnel(c, parser.get(), pending);
            if (!origin) {
                co_return;
            }
            continue;
        }
        if (co_await run_exchange(c, parser, origin ? &*origin : nullptr) == Next::Close) {
            co_return;
        }
    }
}

/// Serves one accepted client connection until it closes. `client_port` attributes its audit
/// events to the jailed process behind it (0: unknown).
template <class W>
awaitable<void> serve_connection(W& worker, typename W::Stream client, std::uint16_t client_port) {
    Connection<W> c(std::move(client), worker, client_port);
    co_await serve_requests(c);
    c.client.close();
}

}  // namespace lj::proxy
