// SPDX-License-Identifier: Apache-2.0
#include "proxy/audit/jail_link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <nlohmann/json.hpp>

#include "proxy/base/diag.hpp"

namespace lj::proxy {
namespace {

using Json = nlohmann::ordered_json;

template <class T>
Json nullable(const std::optional<T>& v) {
    return v ? Json(*v) : Json(nullptr);
}

using diag::errno_text;

}  // namespace

std::string event_to_wire(const AuditEvent& e) {
    Json j;
    j["event"] = e.event;
    j["allowed"] = e.allowed;
    j["reason"] = e.reason;
    j["pid"] = nullable(e.pid);
    j["exe"] = nullable(e.exe);
    j["destination"] = nullable(e.destination);
    return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<AuditEvent> event_from_wire(std::string_view line) {
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return make_error("not a JSON object");
    }
    AuditEvent e;
    try {
        e.event = j.at("event").get<std::string>();
        if (e.event != "connect_denied" && e.event != "socket_denied") {
            return make_error("unexpected event '" + e.event + "'");
        }
        e.allowed = j.at("allowed").get<bool>();
        e.reason = j.at("reason").get<std::string>();
        if (const auto& v = j.at("pid"); !v.is_null())
            e.pid = v.get<int>();
        if (const auto& v = j.at("exe"); !v.is_null())
            e.exe = v.get<std::string>();
        if (const auto& v = j.at("destination"); !v.is_null()) {
            e.destination = v.get<std::string>();
        }
    } catch (const Json::exception& ex) {
        return make_error(std::string("bad field: ") + ex.what());
    }
    return e;
}

namespace {
std::atomic<std::int32_t>* slots(void* table) {
    static_assert(std::atomic<std::int32_t>::is_always_lock_free);
    return static_cast<std::atomic<std::int32_t>*>(table);
}
}  // namespace

Result<std::unique_ptr<ClientMap>> ClientMap::map(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) != kBytes) {
        return make_error("client table: fd " + std::to_string(fd) + " is not a " +
                          std::to_string(kBytes) + "-byte file");
    }
    void* table = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (table == MAP_FAILED) {
        return make_error("client table: mmap: " + errno_text(errno));
    }
    return std::unique_ptr<ClientMap>(new ClientMap(table));
}

ClientMap::~ClientMap() {
    ::munmap(table_, kBytes);
}

std::optional<ClientMap::Who> ClientMap::take(std::uint16_t client_port) {
    const std::int32_t pid = slots(table_)[client_port].exchange(0, std::memory_order_acq_rel);
    if (pid <= 0) {
        return std::nullopt;
    }
    Who who{pid, ""};
    char buf[4096];
    const std::string link = "/proc/" + std::to_string(pid) + "/exe";
    if (const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf); n > 0) {
        who.exe.assign(buf, static_cast<std::size_t>(n));
    }
    return who;
}

void ClientMap::store(void* table, std::uint16_t port, int pid) {
    slots(table)[port].store(pid, std::memory_order_release);
}

}  // namespace lj::proxy

namespace lj::proxy {

JailEventReader::JailEventReader(UniqueFd fd, Sink sink)
    : fd_(std::move(fd)), sink_(std::move(sink)) {
    ::fcntl(fd_.get(), F_SETFD, FD_CLOEXEC);
    ::fcntl(fd_.get(), F_SETFL, ::fcntl(fd_.get(), F_GETFL) | O_NONBLOCK);
}

JailEventReader::~JailEventReader() {
    stop();
}

bool JailEventReader::start() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        return false;
    }
    stop_read_.reset(p[0]);
    stop_write_.reset(p[1]);
    try {
        reader_ = std::thread(&JailEventReader::run, this);
    } catch (const std::system_error&) {
        return false;
    }
    return true;
}

void JailEventReader::stop() {
    if (reader_.joinable()) {
        (void)write_all(stop_write_.get(), "x");  // the reader takes what is left, then ends
        reader_.join();
    }
    (void)drain();
}

void JailEventReader::run() {
    bool stopping = false;
    for (;;) {
        pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
        const int rc = ::poll(fds, 2, stopping ? 0 : -1);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (fds[1].revents & POLLIN) {
            stopping = true;  // from now on: what is readable now, then stop
        }
        if (rc <= 0 || !(fds[0].revents & (POLLIN | POLLHUP))) {
            if (stopping) {
                return;
            }
            continue;
        }
        if (!drain()) {
            return;  // EOF: landjail is gone
        }
    }
}

bool JailEventReader::drain() {
    std::lock_guard lock(mutex_);
    for (;;) {
        char buf[8192];
        const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0;  // EAGAIN: all read; 0: EOF
        }
        pending_.append(buf, static_cast<std::size_t>(n));
        std::size_t nl = 0;
        while ((nl = pending_.find('\n')) != std::string::npos) {
            auto event = event_from_wire(std::string_view(pending_).substr(0, nl));
            if (!event) {
                diag::warn("--event-fd: ignored a bad event: " + event.error().message);
            } else {
                sink_(std::move(*event));
            }
            pending_.erase(0, nl + 1);
        }
    }
}

}  // namespace lj::proxy
