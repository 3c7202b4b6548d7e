// SPDX-License-Identifier: Apache-2.0
// Shared fixtures of the audit trail's unit tests (test_audit_format.cpp, test_audit_writer.cpp,
// test_audit_sinks.cpp, test_audit_client_map.cpp): golden events, a one-JSON-object line
// check, temporary directories, whole-fd reads and a unix listener for the socket sink.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/audit/auditor.hpp"
#include "tests/unit/lj_test.hpp"

namespace lj::test::audit_support {

using lj::policy::Labels;
using lj::policy::Setting;
using lj::proxy::AuditEvent;
using lj::proxy::Auditor;
using lj::test::contains_any;
using lj::test::describe;
using lj::test::printable;
using nlohmann::json;
using nlohmann::ordered_json;
using namespace std::chrono_literals;

using lj::test::split_lines;

// 2026-11-23T10:00:00.123456Z
inline const std::chrono::system_clock::time_point kTime =
    std::chrono::sys_days{std::chrono::year{2026} / 11 / 23} + 10h + 123456us;

// Control characters, an escape sequence and a NUL byte.
inline constexpr char kControlBytes[] = "https://example.com/a\nb\r\x1b[31m\x00z";
inline const std::string kControlUrl(kControlBytes, sizeof kControlBytes - 1);

inline AuditEvent deny_post() {
    AuditEvent e;
    e.http_method = "POST";
    e.http_url = "https://example.com/upload";
    e.host = "example.com";
    e.reason = "no_rule_matched";
    e.pid = 4242;
    e.exe = "/usr/bin/curl";
    return e;
}

inline AuditEvent allow_get(int i) {
    AuditEvent e;
    e.allowed = true;
    e.http_method = "GET";
    e.http_url = "https://api.example.com/v1/items/" + std::to_string(i);
    e.host = "api.example.com";
    e.matched_rule = "domain=api.example.com method=GET";
    e.reason = "allowed";
    return e;
}

inline Labels all_labels() {
    Labels l;
    l.workspace_id = Setting<std::string>{"ws-1", "test"};
    l.workspace_name = Setting<std::string>{"dev", "test"};
    l.owner = Setting<std::string>{"alice", "test"};
    l.template_id = Setting<std::string>{"tpl-7", "test"};
    l.template_version_id = Setting<std::string>{"tv-3", "test"};
    return l;
}

inline std::string json_line(const AuditEvent& e, const Labels& labels = {}) {
    return Auditor::to_json(e, "s-1", 42, kTime, labels);
}

/// Parses one line, failing the test when it is not exactly one JSON object.
inline ordered_json parse(const std::string& line) {
    cr_assert(line.find('\n') == std::string::npos, "a raw newline in: %s",
              printable(line).c_str());
    ordered_json j = ordered_json::parse(line, nullptr, false);
    cr_assert(!j.is_discarded() && j.is_object(), "not a JSON object: %s", printable(line).c_str());
    return j;
}

inline std::vector<std::string> keys(const ordered_json& j) {
    std::vector<std::string> out;
    for (const auto& item : j.items()) {
        out.push_back(item.key());
    }
    return out;
}

inline std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : ",") + s;
    }
    return out;
}

/// A fresh directory under /tmp (short enough for unix socket paths).
inline std::string temp_dir() {
    char templ[] = "/tmp/lj-audit-XXXXXX";
    cr_assert(::mkdtemp(templ) != nullptr, "mkdtemp: %s", std::strerror(errno));
    return templ;
}

inline std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

/// Reads `fd` until EOF.
inline std::string read_all(int fd) {
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

inline std::unique_ptr<Auditor> must_start(Auditor::Options options) {
    auto r = Auditor::start(std::move(options));
    cr_assert(r.ok(), "start: %s", describe(r).c_str());
    return std::move(*r);
}

/// Waits (up to 5 s) until the writer has written `n` events.
inline void wait_written(const Auditor& a, std::uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (a.written() < n && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
    }
    cr_assert_eq(a.written(), n, "written %llu, want %llu",
                 static_cast<unsigned long long>(a.written()), static_cast<unsigned long long>(n));
}

inline int unix_listener(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    cr_assert(fd >= 0 && ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::listen(fd, 4) == 0,
              "listen(%s): %s", path.c_str(), std::strerror(errno));
    return fd;
}

/// Accepts one connection, failing the test when none arrives within 2 s.
inline int accept_one(int listener) {
    pollfd p{listener, POLLIN, 0};
    cr_assert_eq(::poll(&p, 1, 2000), 1, "no connection on the audit socket");
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    cr_assert(fd >= 0, "accept: %s", std::strerror(errno));
    return fd;
}

}  // namespace lj::test::audit_support
