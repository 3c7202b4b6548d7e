// SPDX-License-Identifier: Apache-2.0
// The session's lifetime, its watchdog and the request loop of a client connection; the
// handlers live in session_http.cpp and session_connect.cpp (see session_impl.hpp).
#include "proxy/session/session.hpp"

#include <limits>
#include <string>

#include "proxy/session/http_fields.hpp"
#include "proxy/session/session_impl.hpp"

namespace lj::proxy {

std::uint16_t client_port_of(const tcp::socket& socket) {
    error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    return ec ? 0 : ep.port();
}

Session::Session(tcp::socket socket, Worker& worker)
    : client_port_(client_port_of(socket)),
      client_(std::move(socket)),
      worker_(worker),
      shared_(*worker.shared),
      watch_(std::make_shared<Watch>(worker.io)) {
    watch_->owner = this;
    worker_.sessions.push_back(this);
    self_ = std::prev(worker_.sessions.end());
}

Session::~Session() {
    watch_->owner = nullptr;
    watch_->timer.cancel();
    worker_.sessions.erase(self_);
}

void Worker::abort_all() {
    const std::list<Session*> copy = sessions;
    for (Session* s : copy) {
        s->abort();
    }
}

void Worker::drain() {
    draining = true;
    const std::list<Session*> copy = sessions;  // drain() may end sessions
    for (Session* s : copy) {
        s->drain();
    }
}

awaitable<void> Session::watchdog(std::shared_ptr<Watch> watch) {
    while (watch->owner) {
        watch->timer.expires_at(watch->deadline);
        error_code ec;
        co_await watch->timer.async_wait(asio::redirect_error(use_awaitable, ec));
        if (watch->owner && Clock::now() >= watch->deadline) {
            watch->deadline = Clock::time_point::max();
            watch->owner->on_timeout();
        }
    }
}

void Session::on_timeout() {
    timed_out_ = true;
    if (phase_ == Phase::Upstream) {
        // The client gets a 504. While connecting, Upstream's own deadline does the closing.
        if (upstream_) {
            upstream_->close();
        }
        return;
    }
    client_.close();
    if (upstream_) {
        upstream_->close();
    }
}

awaitable<void> Session::run() {
    asio::co_spawn(worker_.io, watchdog(watch_), asio::detached);
    error_code ec;
    client_.socket().set_option(tcp::no_delay(true), ec);
    co_await serve(nullptr);
    client_.close();
}

/// The request loop of a connection: on the listener (origin == null: absolute-form
/// requests and CONNECT) or inside a tunnel (origin-form requests for `origin`).
awaitable<void> Session::serve(const Origin* origin) {
    for (;;) {
        if (worker_.draining) {
            co_return;
        }
        http::request_parser<http::buffer_body> parser;
        parser.header_limit(kHeaderLimit);
        parser.body_limit(std::numeric_limits<std::uint64_t>::max());
        arm(Phase::Request, shared_.timeouts.header);
        waiting_for_request_ = true;
        error_code ec;
        co_await http::async_read_header(client_, client_buf_, parser,
                                         asio::redirect_error(use_awaitable, ec));
        waiting_for_request_ = false;
        if (ec == http::error::header_limit) {
            audit("", "", "", {}, "header_too_large", 431);
            const std::string body = "landjail: request headers larger than 64 KiB\n";
            co_await respond(http::status::request_header_fields_too_large, body, false);
            co_return;
        }
        if (ec) {
            const bool quiet = ec == http::error::end_of_stream || ec == asio::error::eof ||
                               ec == asio::error::operation_aborted || timed_out_ ||
                               ec == asio::error::connection_reset ||
                               ec == asio::error::bad_descriptor;
            if (!quiet) {
                audit("", "", "", {}, "bad_request", 400);
                const std::string body = "landjail: malformed request: " + ec.message() + "\n";
                co_await respond(http::status::bad_request, body, false);
            }
            co_return;
        }
        head_request_ = parser.get().method() == http::verb::head;
        if (std::string why = framing_problem(parser.get()); !why.empty()) {
            // Where this request ends (or goes) is ambiguous: whoever reads it next might
            // read another request out of its body.
            const auto& req = parser.get();
            audit(std::string(req.method_string()), std::string(req.target()), "", {},
                  "bad_request", 400, "ambiguous_framing");
            co_await respond(http::status::bad_request, "landjail: bad request: " + why + "\n",
                             false);
            co_return;
        }
        if (!origin && parser.get().method() == http::verb::connect) {
            co_await handle_connect(parser.get());
            co_return;
        }
        if (co_await handle(parser, origin) == Next::Close) {
            co_return;
        }
    }
}

awaitable<void> serve_client(tcp::socket socket, Worker& worker) {
    Session session(std::move(socket), worker);
    co_await session.run();
}

}  // namespace lj::proxy
