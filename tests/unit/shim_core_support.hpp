// SPDX-License-Identifier: Apache-2.0
// Shared fixtures of the shim's pure-helper unit tests (test_shim_*.cpp): a zeroed placeholder
// table in shared memory, socket addresses (v4, v6, unix, placeholders), DNS names of a given
// length, and the canary byte written after every output buffer.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shim/core.h"
#include "tests/unit/lj_test.hpp"

namespace lj::test::shim_core_support {

using lj::test::cr_str;
using lj::test::printable;

// ---- helpers ------------------------------------------------------------------------------

/// A zeroed table in a shared anonymous mapping (about 1 MiB: never on the stack). With
/// `shared`, a forked child writes into the same memory.
struct Table {
    lj_table* t = nullptr;
    Table() {
        void* p = mmap(nullptr, sizeof(lj_table), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        cr_assert(p != MAP_FAILED, "mmap of %zu bytes failed", sizeof(lj_table));
        t = static_cast<lj_table*>(p);
    }
    ~Table() { munmap(t, sizeof(lj_table)); }
    Table(const Table&) = delete;
    Table& operator=(const Table&) = delete;
};

inline int insert(lj_table* t, const std::string& name) {
    return lj_table_insert(t, name.data(), name.size());
}

inline std::string name_of(const lj_table* t, int index) {
    const char* n = lj_table_name(t, index);
    return n == nullptr ? std::string("(null)") : std::string(n);
}

struct Addr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

inline Addr v4(const char* text, std::uint16_t port = 0) {
    Addr a;
    auto& in = reinterpret_cast<sockaddr_in&>(a.ss);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET, text, &in.sin_addr), 1, "bad test address %s", text);
    a.len = sizeof(sockaddr_in);
    return a;
}

inline Addr v6(const char* text, std::uint16_t port = 0) {
    Addr a;
    auto& in6 = reinterpret_cast<sockaddr_in6&>(a.ss);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET6, text, &in6.sin6_addr), 1, "bad test address %s", text);
    a.len = sizeof(sockaddr_in6);
    return a;
}

inline Addr unix_addr() {
    Addr a;
    auto& un = reinterpret_cast<sockaddr_un&>(a.ss);
    un.sun_family = AF_UNIX;
    std::strcpy(un.sun_path, "/tmp/x");
    a.len = sizeof(sockaddr_un);
    return a;
}

/// 198.18.0.0 + 1 + index as a sockaddr_in (port 443).
inline Addr placeholder(int index) {
    Addr a;
    auto& in = reinterpret_cast<sockaddr_in&>(a.ss);
    in.sin_family = AF_INET;
    in.sin_port = htons(443);
    in.sin_addr.s_addr = htonl(lj_placeholder_v4(index));
    a.len = sizeof(sockaddr_in);
    return a;
}

inline std::string repeat(char c, std::size_t n) {
    return std::string(n, c);
}

/// A DNS name of exactly n characters (labels of at most 63).
inline std::string name_of_length(std::size_t n) {
    std::string s;
    while (s.size() < n) {
        const std::size_t left = n - s.size();
        if (!s.empty()) {
            s += '.';
            if (left == 1) {
                s.back() = 'x';  // no trailing dot: the last character is a letter
                break;
            }
            s += repeat('a', std::min<std::size_t>(63, left - 1));
        } else {
            s += repeat('a', std::min<std::size_t>(63, left));
        }
    }
    return s;
}

inline constexpr char kCanary = '\x5a';

}  // namespace lj::test::shim_core_support
