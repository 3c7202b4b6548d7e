// SPDX-License-Identifier: Apache-2.0
// Shared fixtures of the HTTP collector sink's unit tests (test_audit_http_*.cpp): a tiny
// collector on 127.0.0.1 (a thread with a raw socket) that answers with given statuses, a
// port nobody listens on, an Auditor with short test timings, and seq and spool counters.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/audit/auditor.hpp"
#include "tests/unit/lj_test.hpp"

namespace lj::test::audit_http_support {

using lj::proxy::AuditEvent;
using lj::proxy::Auditor;
using lj::proxy::HttpSink;
using lj::test::describe;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

using lj::test::split_lines;

using Steady = std::chrono::steady_clock;

inline int bound_socket(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0 && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                  ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0,
              "bind(127.0.0.1:%u): %s", port, std::strerror(errno));
    return fd;
}

inline std::uint16_t port_of(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    cr_assert(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    return ntohs(a.sin_port);
}

/// A port where nobody listens (connect: ECONNREFUSED) until release(): bound, not listening.
struct DownPort {
    int fd = bound_socket(0);
    std::uint16_t port = port_of(fd);
    void release() {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }
    ~DownPort() { release(); }
};

/// The collector: answers each POST with the next status of `statuses` (200 once they are
/// used up) and keeps the bodies it answered 2xx; with `answer` false it never accepts, so
/// that requests hang (the kernel completes the handshake from the backlog).
class Collector {
  public:
    explicit Collector(std::uint16_t port = 0, std::vector<int> statuses = {}, bool answer = true)
        : fd_(bound_socket(port)), statuses_(std::move(statuses)) {
        cr_assert(::listen(fd_, 64) == 0, "listen: %s", std::strerror(errno));
        if (answer) {
            thread_ = std::thread([this] { serve(); });
        }
    }
    ~Collector() {
        stop_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
        ::close(fd_);
    }
    Collector(const Collector&) = delete;
    Collector& operator=(const Collector&) = delete;

    std::uint16_t port() const { return port_of(fd_); }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/ingest"; }
    std::vector<std::string> bodies() const {
        std::lock_guard lock(mutex_);
        return bodies_;
    }
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        for (const std::string& b : bodies()) {
            for (std::string& l : split_lines(b)) {
                out.push_back(std::move(l));
            }
        }
        return out;
    }
    std::size_t requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    std::string headers() const {
        std::lock_guard lock(mutex_);
        return last_headers_;
    }

  private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) != 1) {
                continue;
            }
            const int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn >= 0) {
                handle(conn);
                ::close(conn);
            }
        }
    }

    /// One request per connection (the reply says Connection: close).
    void handle(int conn) {
        std::string data;
        std::size_t head_end = std::string::npos;
        std::size_t length = 0;
        while (head_end == std::string::npos || data.size() < head_end + 4 + length) {
            pollfd p{conn, POLLIN, 0};
            char buf[65536];
            const ssize_t n = ::poll(&p, 1, 2000) == 1 ? ::read(conn, buf, sizeof buf) : -1;
            if (n <= 0) {
                return;
            }
            data.append(buf, static_cast<std::size_t>(n));
            if (head_end == std::string::npos && (head_end = data.find("\r\n\r\n")) != data.npos) {
                length = content_length(data.substr(0, head_end));
            }
        }
        const int status = next_status(data.substr(0, head_end), data.substr(head_end + 4));
        const std::string body = status >= 400 ? reply_body_ : "";
        const std::string reply = "HTTP/1.1 " + std::to_string(status) +
                                  " X\r\nContent-Length: " + std::to_string(body.size()) +
                                  "\r\nConnection: close\r\n\r\n" + body;
        (void)!::write(conn, reply.data(), reply.size());
    }

    static std::size_t content_length(const std::string& head) {
        std::string lower = head;
        for (char& c : lower) {
            c = lj::test::lower(c);
        }
        const std::size_t at = lower.find("\r\ncontent-length:");
        return at == std::string::npos ? 0 : std::stoul(lower.substr(at + 17));
    }

    int next_status(const std::string& head, const std::string& body) {
        std::lock_guard lock(mutex_);
        const int status = status_of                      ? status_of(body)
                           : requests_ < statuses_.size() ? statuses_[requests_]
                                                          : 200;
        ++requests_;
        last_headers_ = head;
        all_bodies_.push_back(body);
        if (status >= 200 && status < 300) {
            bodies_.push_back(body);
        }
        return status;
    }

  public:
    /// From now on, the status for a request is `f(body)`.
    void answer_by_body(std::function<int(const std::string&)> f) {
        std::lock_guard lock(mutex_);
        status_of = std::move(f);
    }
    /// Every request's body, whatever the answer.
    std::vector<std::string> all_bodies() const {
        std::lock_guard lock(mutex_);
        return all_bodies_;
    }

  private:
    std::function<int(const std::string&)> status_of;
    std::string reply_body_ = "bad token\nsee the collector's log";  ///< for 4xx and 5xx
    int fd_;
    std::vector<int> statuses_;
    std::vector<std::string> all_bodies_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::vector<std::string> bodies_;
    std::size_t requests_ = 0;
    std::string last_headers_;
    std::thread thread_;
};

inline std::string temp_dir() {
    char templ[] = "/tmp/lj-http-XXXXXX";
    cr_assert(::mkdtemp(templ) != nullptr, "mkdtemp: %s", std::strerror(errno));
    return templ;
}

inline AuditEvent event(int i) {
    AuditEvent e;
    e.allowed = i % 3 != 0;
    e.http_method = "GET";
    e.http_url = "https://api.example.com/v1/items/" + std::to_string(i);
    e.host = "api.example.com";
    e.reason = e.allowed ? "allow_rule_matched" : "no_rule_matched";
    return e;
}

/// File sink in `dir`, no stderr lines, and an HTTP sink to `url` with short test timings.
inline Auditor::Options options(const std::string& dir, const std::string& url,
                                std::optional<std::string> spool = std::nullopt) {
    Auditor::Options o;
    o.file = dir + "/audit.jsonl";
    o.stderr_denials = false;
    HttpSink::Options h;
    h.url = url;
    h.batch_size = 5;
    h.flush_interval = 20ms;
    h.spool.dir = std::move(spool);
    h.retry_min = 20ms;
    h.retry_max = 100ms;
    h.grace = 300ms;
    o.http = h;
    return o;
}

inline std::unique_ptr<Auditor> must_start(Auditor::Options o) {
    auto r = Auditor::start(std::move(o));
    cr_assert(r.ok(), "start: %s", describe(r).c_str());
    return std::move(*r);
}

inline void record(Auditor& a, int from, int to) {
    for (int i = from; i <= to; ++i) {
        cr_assert(a.record(event(i)), "record %d dropped", i);
    }
}

/// Waits up to `limit` for `done`; false when it did not happen.
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = Steady::now() + limit;
    while (!done()) {
        if (Steady::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

/// The seq numbers of `lines` (JSON lines of one session).
inline std::vector<std::uint64_t> seqs(const std::vector<std::string>& lines) {
    std::vector<std::uint64_t> out;
    for (const std::string& l : lines) {
        out.push_back(json::parse(l).at("seq").get<std::uint64_t>());
    }
    return out;
}

inline std::vector<std::uint64_t> one_to(std::uint64_t n) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t i = 1; i <= n; ++i) {
        out.push_back(i);
    }
    return out;
}

inline std::string file_lines_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline std::vector<std::string> file_lines(const std::string& path) {
    return split_lines(file_lines_text(path));
}

/// Batch files (*.ndjson) under `dir`, recursively, and their total size.
inline std::size_t spool_files(const std::string& dir, std::uintmax_t* bytes = nullptr) {
    std::size_t n = 0;
    std::uintmax_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (e.is_regular_file() && e.path().extension() == ".ndjson") {
            ++n;
            total += e.file_size();
        }
    }
    if (bytes != nullptr) {
        *bytes = total;
    }
    return n;
}

inline std::size_t entries(const std::string& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) {
        ++n;
    }
    return n;
}

}  // namespace lj::test::audit_http_support
