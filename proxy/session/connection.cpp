// SPDX-License-Identifier: Apache-2.0
#include "proxy/session/connection.hpp"

namespace lj::proxy {

Watchdog::Watchdog(asio::io_context& io, std::function<void()> on_expire)
    : state_(std::make_shared<State>(io)) {
    state_->on_expire = std::move(on_expire);
}

Watchdog::~Watchdog() {
    state_->on_expire = nullptr;
    state_->timer.cancel();
}

void Watchdog::start(asio::io_context& io) {
    asio::co_spawn(io, wait(state_), asio::detached);
}

awaitable<void> Watchdog::wait(std::shared_ptr<State> state) {
    while (state->on_expire) {
        state->timer.expires_at(state->deadline);
        error_code ec;
        co_await state->timer.async_wait(asio::redirect_error(use_awaitable, ec));
        if (state->on_expire && Clock::now() >= state->deadline) {
            state->deadline = Clock::time_point::max();
            state->on_expire();
        }
    }
}

}  // namespace lj::proxy
