// SPDX-License-Identifier: Apache-2.0
// The product's instantiation of the session: the roles (loop, tunnel, exchange, relay) for
// Worker and its Stream, and the worker's shutdown of its connections.
#include "proxy/session/session.hpp"

#include "proxy/session/connection.hpp"
#include "proxy/session/loop.hpp"

namespace lj::proxy {
namespace {

std::uint16_t client_port_of(const tcp::socket& socket) {
    error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    return ec ? 0 : ep.port();
}

}  // namespace

void Worker::abort_all() {
    const std::list<Connection<Worker>*> copy = sessions;
    for (Connection<Worker>* s : copy) {
        s->abort();
    }
}

void Worker::drain() {
    draining = true;
    const std::list<Connection<Worker>*> copy = sessions;  // drain() may end sessions
    for (Connection<Worker>* s : copy) {
        s->drain();
    }
}

// Not a coroutine itself: every connection holds the frames of the coroutines it is in for
// as long as it lives, so this one adds none.
awaitable<void> serve_client(tcp::socket socket, Worker& worker) {
    const std::uint16_t port = client_port_of(socket);
    error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    return serve_connection(worker, Stream(std::move(socket)), port);
}

}  // namespace lj::proxy
