// SPDX-License-Identifier: Apache-2.0
#include "proxy/audit/jail_events.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>

namespace lj::jail {
namespace {

/// The longest exe kept in an event: one line stays one atomic pipe write (PIPE_BUF).
constexpr std::size_t kMaxExe = 1024;

}  // namespace

JailEvents::JailEvents(UniqueFd write_end, UniqueFd read_end)
    : write_(std::move(write_end)), read_(std::move(read_end)) {
    fcntl(write_.get(), F_SETFL, fcntl(write_.get(), F_GETFL) | O_NONBLOCK);
    fcntl(read_.get(), F_SETFL, fcntl(read_.get(), F_GETFL) | O_NONBLOCK);
}

void JailEvents::record(proxy::AuditEvent&& event) {
    if (event.exe && event.exe->size() > kMaxExe) {
        event.exe->resize(kMaxExe);
    }
    const std::lock_guard lock(mutex_);
    if (switched_) {
        if (!local_ || !local_->record(std::move(event))) {
            dropped_.fetch_add(1);
        }
        return;
    }
    const std::string line = proxy::event_to_wire(event);
    if (write(write_.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        dropped_.fetch_add(1);
    }
}

std::uint64_t JailEvents::switch_to(std::shared_ptr<proxy::Auditor> local) {
    const std::lock_guard lock(mutex_);
    if (switched_) {
        return 0;
    }
    switched_ = true;
    local_ = std::move(local);
    std::string text;
    char buf[65536];
    for (;;) {
        const ssize_t n = read(read_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;  // EAGAIN: the pipe is empty
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    write_.reset();
    read_.reset();
    std::uint64_t recovered = 0;
    recover(text, &recovered);
    return recovered;
}

void JailEvents::recover(const std::string& text, std::uint64_t* recovered) {
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t end = text.find('\n', at);
        end = end == std::string::npos ? text.size() : end;
        // A line the proxy had begun to read starts mid-way: it does not parse.
        auto event = proxy::event_from_wire(std::string_view(text).substr(at, end - at));
        if (event && local_ && local_->record(std::move(*event))) {
            ++*recovered;
        } else {
            dropped_.fetch_add(1);
        }
        at = end + 1;
    }
}

}  // namespace lj::jail
