// SPDX-License-Identifier: Apache-2.0
// The shim's pure helpers (shim/core.h, libljshim_core.a): the placeholder table (insert,
// names, placeholder addresses and their indices, lock-free insertion from many threads and
// from a forked process over shared memory), address helpers (numeric hosts, the CONNECT
// authority, ports, loopback, endpoint equality), the proxy URL, and the CONNECT request and
// reply. Every function of the header is called here, including the buffer-size edges (a
// canary after the buffer must never change).
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

using lj::test::cr_str;
using lj::test::printable;

namespace {

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

int insert(lj_table* t, const std::string& name) {
    return lj_table_insert(t, name.data(), name.size());
}

std::string name_of(const lj_table* t, int index) {
    const char* n = lj_table_name(t, index);
    return n == nullptr ? std::string("(null)") : std::string(n);
}

struct Addr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

Addr v4(const char* text, std::uint16_t port = 0) {
    Addr a;
    auto& in = reinterpret_cast<sockaddr_in&>(a.ss);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET, text, &in.sin_addr), 1, "bad test address %s", text);
    a.len = sizeof(sockaddr_in);
    return a;
}

Addr v6(const char* text, std::uint16_t port = 0) {
    Addr a;
    auto& in6 = reinterpret_cast<sockaddr_in6&>(a.ss);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET6, text, &in6.sin6_addr), 1, "bad test address %s", text);
    a.len = sizeof(sockaddr_in6);
    return a;
}

Addr unix_addr() {
    Addr a;
    auto& un = reinterpret_cast<sockaddr_un&>(a.ss);
    un.sun_family = AF_UNIX;
    std::strcpy(un.sun_path, "/tmp/x");
    a.len = sizeof(sockaddr_un);
    return a;
}

/// 198.18.0.0 + 1 + index as a sockaddr_in (port 443).
Addr placeholder(int index) {
    Addr a;
    auto& in = reinterpret_cast<sockaddr_in&>(a.ss);
    in.sin_family = AF_INET;
    in.sin_port = htons(443);
    in.sin_addr.s_addr = htonl(lj_placeholder_v4(index));
    a.len = sizeof(sockaddr_in);
    return a;
}

std::string repeat(char c, std::size_t n) {
    return std::string(n, c);
}

/// A DNS name of exactly n characters (labels of at most 63).
std::string name_of_length(std::size_t n) {
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

constexpr char kCanary = '\x5a';

}  // namespace

// ---- placeholder table ------------------------------------------------------------------

Test(shim_table, zeroed_memory_is_an_empty_table) {
    Table tab;
    for (int i : {0, 1, LJ_TABLE_SLOTS / 2, LJ_TABLE_SLOTS - 1}) {
        cr_expect_null(lj_table_name(tab.t, i), "entry %d of an empty table", i);
    }
}

Test(shim_table, insert_returns_indices_that_name_the_names) {
    Table tab;
    const int a = insert(tab.t, "origin.test");
    const int b = insert(tab.t, "other.test");
    const int c = insert(tab.t, "a");
    for (int i : {a, b, c}) {
        cr_assert(i >= 0 && i < LJ_TABLE_SLOTS, "index %d", i);
    }
    cr_expect(a != b && b != c && a != c, "distinct names, distinct indices: %d %d %d", a, b, c);
    cr_expect_eq(name_of(tab.t, a), std::string("origin.test"));
    cr_expect_eq(name_of(tab.t, b), std::string("other.test"));
    cr_expect_eq(name_of(tab.t, c), std::string("a"));
    int used = 0;
    for (int i = 0; i < LJ_TABLE_SLOTS; ++i) {
        used += lj_table_name(tab.t, i) != nullptr;
    }
    cr_expect_eq(used, 3, "three names, three entries");
}

Test(shim_table, same_name_same_index) {
    Table tab;
    const int i = insert(tab.t, "origin.test");
    cr_assert_geq(i, 0);
    insert(tab.t, "other.test");
    cr_expect_eq(insert(tab.t, "origin.test"), i);
    cr_expect_eq(insert(tab.t, "ORIGIN.Test"), i, "names compare case-insensitively");
    cr_expect_eq(insert(tab.t, "origin.test."), i, "a trailing dot is ignored");
    cr_expect_eq(insert(tab.t, "Origin.TEST."), i);
    int used = 0;
    for (int k = 0; k < LJ_TABLE_SLOTS; ++k) {
        used += lj_table_name(tab.t, k) != nullptr;
    }
    cr_expect_eq(used, 2, "no entry was added for the variants");
}

Test(shim_table, names_are_stored_lower_case_without_the_trailing_dot) {
    Table tab;
    const int i = insert(tab.t, "WWW.Example.COM.");
    cr_assert_geq(i, 0);
    cr_expect_eq(name_of(tab.t, i), std::string("www.example.com"));
    const char* n = lj_table_name(tab.t, i);
    cr_assert_not_null(n);
    cr_expect_eq(std::strlen(n), std::strlen("www.example.com"), "NUL-terminated");
}

Test(shim_table, length_argument_is_honoured) {
    // The name need not be NUL-terminated: only `len` bytes count.
    Table tab;
    const char buf[] = {'a', 'b', 'c', 'd', 'e', 'f'};
    const int i = lj_table_insert(tab.t, buf, 3);
    cr_assert_geq(i, 0);
    cr_expect_eq(name_of(tab.t, i), std::string("abc"));
    cr_expect_eq(lj_table_insert(tab.t, "abcdef", 3), i);
    cr_expect_neq(lj_table_insert(tab.t, "abcdef", 6), i, "abcdef is another name");
    cr_expect_neq(insert(tab.t, "ab"), i, "a prefix is another name");
}

Test(shim_table, empty_and_too_long_names_are_refused) {
    Table tab;
    cr_expect_eq(lj_table_insert(tab.t, "", 0), -1, "empty name");
    cr_expect_eq(lj_table_insert(tab.t, "x", 0), -1, "len 0");
    cr_expect_eq(insert(tab.t, "."), -1, "only a trailing dot");
    const std::string n253 = name_of_length(LJ_NAME_MAX);
    cr_assert_eq(n253.size(), 253u);
    const int i = insert(tab.t, n253);
    cr_expect_geq(i, 0, "a 253-character name fits");
    cr_expect_eq(name_of(tab.t, i), n253);
    cr_expect_eq(insert(tab.t, n253 + "."), i,
                 "253 characters plus the trailing dot that is ignored is the same name");
    cr_expect_eq(insert(tab.t, n253 + "b"), -1, "254 characters");
    cr_expect_eq(insert(tab.t, n253 + "bb."), -1, "255 characters and a dot");
    cr_expect_eq(insert(tab.t, repeat('a', 4000)), -1, "4000 characters");
    int used = 0;
    for (int k = 0; k < LJ_TABLE_SLOTS; ++k) {
        used += lj_table_name(tab.t, k) != nullptr;
    }
    cr_expect_eq(used, 1, "nothing else was stored");
}

Test(shim_table, full_table_refuses_new_names_and_keeps_old_ones) {
    Table tab;
    std::vector<int> index(LJ_TABLE_SLOTS);
    std::vector<char> seen(LJ_TABLE_SLOTS, 0);
    for (int i = 0; i < LJ_TABLE_SLOTS; ++i) {
        const int got = insert(tab.t, "h" + std::to_string(i) + ".test");
        if (got < 0 || got >= LJ_TABLE_SLOTS || seen[static_cast<std::size_t>(got)] != 0) {
            cr_assert_fail("insert #%d returned %d (bad or already used)", i, got);
        }
        seen[static_cast<std::size_t>(got)] = 1;
        index[static_cast<std::size_t>(i)] = got;
    }
    cr_expect_eq(insert(tab.t, "one-too-many.test"), -1, "the table is full");
    cr_expect_eq(insert(tab.t, "h0.test"), index[0], "a known name is still found when full");
    cr_expect_eq(insert(tab.t, "H4095.TEST."), index[LJ_TABLE_SLOTS - 1]);
    cr_expect_eq(name_of(tab.t, index[LJ_TABLE_SLOTS - 1]), std::string("h4095.test"));
    for (int i = 0; i < LJ_TABLE_SLOTS; i += 97) {
        const std::string want = "h" + std::to_string(i) + ".test";
        cr_expect_eq(name_of(tab.t, index[static_cast<std::size_t>(i)]), want);
    }
}

Test(shim_table, name_of_a_bad_index_is_null) {
    Table tab;
    const int i = insert(tab.t, "origin.test");
    cr_assert_geq(i, 0);
    cr_expect_null(lj_table_name(tab.t, -1));
    cr_expect_null(lj_table_name(tab.t, -1000));
    cr_expect_null(lj_table_name(tab.t, (i + 1) % LJ_TABLE_SLOTS), "an unused entry");
    cr_expect_null(lj_table_name(tab.t, LJ_TABLE_SLOTS));
    cr_expect_null(lj_table_name(tab.t, LJ_TABLE_SLOTS + 1));
    cr_expect_null(lj_table_name(tab.t, 0x7fffffff));
}

Test(shim_table, slot_being_written_has_no_name) {
    // A slot in state 1 (claimed, name not yet complete) must not be read as a name.
    Table tab;
    tab.t->slot[0].state = 1;
    tab.t->slot[0].len = 3;
    std::memcpy(tab.t->slot[0].name, "abc", 4);
    cr_expect_null(lj_table_name(tab.t, 0));
}

Test(shim_table, placeholder_v4_addresses) {
    cr_expect_eq(lj_placeholder_v4(0), 0xC6120001u, "198.18.0.1");
    cr_expect_eq(lj_placeholder_v4(1), 0xC6120002u, "198.18.0.2");
    cr_expect_eq(lj_placeholder_v4(254), 0xC61200FFu, "198.18.0.255");
    cr_expect_eq(lj_placeholder_v4(255), 0xC6120100u, "198.18.1.0");
    cr_expect_eq(lj_placeholder_v4(LJ_TABLE_SLOTS - 1), 0xC6121000u, "198.18.16.0");
    // Every placeholder is inside 198.18.0.0/15.
    for (int i = 0; i < LJ_TABLE_SLOTS; ++i) {
        if ((lj_placeholder_v4(i) & 0xFFFE0000u) != 0xC6120000u) {
            cr_assert_fail("placeholder %d = %08x is outside 198.18.0.0/15", i,
                           lj_placeholder_v4(i));
        }
    }
}

Test(shim_table, placeholder_index_round_trip_v4_and_v6) {
    for (int i : {0, 1, 254, 255, 256, 1000, LJ_TABLE_SLOTS - 1}) {
        const Addr a = placeholder(i);
        cr_expect_eq(lj_placeholder_index(a.sa(), a.len), i, "index of placeholder %d (v4)", i);
        // ::ffff:198.18.x.y
        char text[64];
        const std::uint32_t h = lj_placeholder_v4(i);
        std::snprintf(text, sizeof text, "::ffff:%u.%u.%u.%u", (h >> 24) & 255u, (h >> 16) & 255u,
                      (h >> 8) & 255u, h & 255u);
        const Addr b = v6(text, 80);
        cr_expect_eq(lj_placeholder_index(b.sa(), b.len), i, "index of %s", text);
        // A longer length (sizeof(sockaddr_storage)) is fine.
        cr_expect_eq(lj_placeholder_index(a.sa(), sizeof(sockaddr_storage)), i);
    }
}

Test(shim_table, placeholder_index_of_other_addresses) {
    struct Row {
        const char* text;
        bool six;
    };
    const Row rows[] = {
        {"198.18.0.0", false},      // the network address: index -1 would be below 0
        {"198.18.16.1", false},     // index LJ_TABLE_SLOTS: beyond the table
        {"198.19.255.255", false},  // inside the /15, far beyond the table
        {"198.17.255.255", false},  {"198.20.0.1", false},       {"127.0.0.1", false},
        {"10.0.0.1", false},        {"0.0.0.0", false},          {"::1", true},
        {"2001:db8::c612:1", true},  // 198.18.0.1 as the low 32 bits, but not v4-mapped
        {"::c612:1", true},          // v4-compatible (deprecated), not v4-mapped
        {"64:ff9b::c612:1", true},   // NAT64 form
        {"::ffff:10.0.0.1", true},  {"::ffff:198.18.0.0", true}, {"::", true},
    };
    for (const Row& r : rows) {
        const Addr a = r.six ? v6(r.text, 443) : v4(r.text, 443);
        cr_expect_eq(lj_placeholder_index(a.sa(), a.len), -1, "%s is not a placeholder", r.text);
    }
    const Addr u = unix_addr();
    cr_expect_eq(lj_placeholder_index(u.sa(), u.len), -1, "AF_UNIX");
    // A length too short for the family: never read beyond it.
    const Addr p = placeholder(0);
    cr_expect_eq(lj_placeholder_index(p.sa(), sizeof(sockaddr_in) - 1), -1, "short sockaddr_in");
    cr_expect_eq(lj_placeholder_index(p.sa(), 0), -1, "length 0");
    const Addr p6 = v6("::ffff:198.18.0.1");
    // 24 bytes (SIN6_LEN_RFC2133, without sin6_scope_id) is a valid sockaddr_in6 for the
    // kernel; anything shorter is not.
    cr_expect_eq(lj_placeholder_index(p6.sa(), 24), 0, "a 24-byte sockaddr_in6");
    cr_expect_eq(lj_placeholder_index(p6.sa(), 23), -1, "short sockaddr_in6");
    cr_expect_eq(lj_placeholder_index(p6.sa(), sizeof(sockaddr_in)), -1,
                 "an AF_INET6 address with the length of a sockaddr_in");
}

// The table is shared memory with no pointers: a forked child's insertion is seen by the
// parent, and the parent's by the child (what makes it survive fork and serve the jail).
Test(shim_table, shared_between_processes) {
    Table tab;
    const int parent = insert(tab.t, "parent.test");
    cr_assert_geq(parent, 0);
    int* child_index = static_cast<int*>(
        mmap(nullptr, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    cr_assert(child_index != MAP_FAILED);
    *child_index = -2;
    const pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork");
    if (pid == 0) {
        const int ok = lj_table_insert(tab.t, "parent.test", 11) == parent;
        *child_index = lj_table_insert(tab.t, "child.test", 10);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the child did not see the parent's entry");
    cr_assert_geq(*child_index, 0);
    cr_expect_eq(name_of(tab.t, *child_index), std::string("child.test"),
                 "the parent sees the child's entry");
    cr_expect_eq(insert(tab.t, "child.test"), *child_index);
    munmap(child_index, sizeof(int));
}

namespace {

constexpr int kThreads = 8;
constexpr int kNames = 500;

struct RaceArg {
    lj_table* t;
    int thread;
    int got[kNames];  // index returned for name n
};

void* race_worker(void* p) {
    auto* a = static_cast<RaceArg*>(p);
    // Every thread inserts the same names, in a different order.
    for (int k = 0; k < kNames; ++k) {
        const int n = (k * 7 + a->thread * 61) % kNames;
        const std::string name = "race-" + std::to_string(n) + ".test";
        a->got[n] = lj_table_insert(a->t, name.data(), name.size());
    }
    return nullptr;
}

void run_race(lj_table* t, std::vector<RaceArg>& args) {
    std::vector<pthread_t> th(kThreads);
    args.assign(kThreads, RaceArg{});
    for (int i = 0; i < kThreads; ++i) {
        args[static_cast<std::size_t>(i)].t = t;
        args[static_cast<std::size_t>(i)].thread = i;
    }
    for (int i = 0; i < kThreads; ++i) {
        cr_assert_eq(pthread_create(&th[static_cast<std::size_t>(i)], nullptr, race_worker,
                                    &args[static_cast<std::size_t>(i)]),
                     0);
    }
    for (pthread_t& x : th) {
        pthread_join(x, nullptr);
    }
}

}  // namespace

// Lock-free insertion from many threads: whatever index a thread gets names its name.
Test(shim_table, concurrent_inserts_map_back_to_their_names) {
    for (int round = 0; round < 20; ++round) {
        Table tab;
        std::vector<RaceArg> args;
        run_race(tab.t, args);
        for (const RaceArg& a : args) {
            for (int n = 0; n < kNames; ++n) {
                const std::string want = "race-" + std::to_string(n) + ".test";
                if (a.got[n] < 0 || name_of(tab.t, a.got[n]) != want) {
                    cr_assert_fail("round %d thread %d: %s got index %d naming %s", round, a.thread,
                                   want.c_str(), a.got[n], name_of(tab.t, a.got[n]).c_str());
                }
            }
        }
    }
}

// ... and one name has one index ("the index of name, inserted if new"): no duplicate slots
// when two threads insert the same new name at once.
Test(shim_table, concurrent_inserts_agree_on_one_index_per_name) {
    for (int round = 0; round < 20; ++round) {
        Table tab;
        std::vector<RaceArg> args;
        run_race(tab.t, args);
        for (int n = 0; n < kNames; ++n) {
            for (const RaceArg& a : args) {
                if (a.got[n] != args[0].got[n]) {
                    cr_assert_fail(
                        "round %d: race-%d.test got index %d in thread 0 and %d in "
                        "thread %d",
                        round, n, args[0].got[n], a.got[n], a.thread);
                }
            }
        }
        int used = 0;
        for (int k = 0; k < LJ_TABLE_SLOTS; ++k) {
            used += lj_table_name(tab.t, k) != nullptr;
        }
        cr_expect_eq(used, kNames, "round %d: %d names used %d entries", round, kNames, used);
    }
}

// ---- addresses --------------------------------------------------------------------------

Test(shim_addr, is_numeric_host_agrees_with_inet_pton) {
    const char* rows[] = {
        "1.2.3.4",
        "127.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "::1",
        "::",
        "2001:db8::1",
        "::ffff:1.2.3.4",
        "fe80::1",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "256.1.1.1",
        "1.2.3.4 ",
        " 1.2.3.4",
        "[::1]",
        "fe80::1%eth0",
        "0x7f.0.0.1",
        "localhost",
        "example.com",
        "origin.test",
        "1.2.3.4.nip.io",
        "",
        "a",
        "2001:db8::g",
        "1e100.net",
        ":::",
        "1::2::3",
        "12345",
        "::ffff:198.18.0.1",
    };
    for (const char* s : rows) {
        unsigned char buf[16];
        const int want = (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
        cr_expect_eq(lj_is_numeric_host(s), want, "lj_is_numeric_host(\"%s\") should be %d", s,
                     want);
    }
}

Test(shim_addr, format_host) {
    char buf[64];
    Addr a = v4("192.0.2.7", 443);
    cr_expect_eq(lj_format_host(buf, sizeof buf, a.sa(), a.len), 9u);
    cr_expect_str_eq(buf, "192.0.2.7");
    a = v4("255.255.255.255", 1);
    cr_expect_eq(lj_format_host(buf, sizeof buf, a.sa(), a.len), 15u);
    cr_expect_str_eq(buf, "255.255.255.255");
    a = v6("2001:db8::1", 443);
    cr_expect_eq(lj_format_host(buf, sizeof buf, a.sa(), a.len), 13u);
    cr_expect_str_eq(buf, "[2001:db8::1]");
    a = v6("::1", 443);
    cr_expect_eq(lj_format_host(buf, sizeof buf, a.sa(), a.len), 5u);
    cr_expect_str_eq(buf, "[::1]");
    a = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 443);  // the longest form (41 + NUL)
    cr_expect_eq(lj_format_host(buf, sizeof buf, a.sa(), a.len), 41u);
    cr_expect_str_eq(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]");
    cr_expect_eq(lj_format_host(buf, 42, a.sa(), a.len), 41u, "exactly enough room");
    cr_expect_eq(lj_format_host(buf, 41, a.sa(), a.len), 0u);
    // A v4-mapped address is either its IPv4 form or the bracketed IPv6 one.
    a = v6("::ffff:192.0.2.7", 443);
    const std::size_t n = lj_format_host(buf, sizeof buf, a.sa(), a.len);
    cr_expect(
        n > 0 && n == std::strlen(buf) &&
            (std::strcmp(buf, "192.0.2.7") == 0 || std::strcmp(buf, "[::ffff:192.0.2.7]") == 0),
        "v4-mapped formatted as \"%s\" (%zu)", printable(buf).c_str(), n);
}

Test(shim_addr, format_host_sizes_and_families) {
    char buf[32];
    const Addr a = v4("192.0.2.7", 443);  // 9 characters + NUL
    std::memset(buf, kCanary, sizeof buf);
    cr_expect_eq(lj_format_host(buf, 10, a.sa(), a.len), 9u, "exactly enough room");
    cr_expect_str_eq(buf, "192.0.2.7");
    for (std::size_t size : {0u, 1u, 5u, 9u}) {
        std::memset(buf, kCanary, sizeof buf);
        cr_expect_eq(lj_format_host(buf, size, a.sa(), a.len), 0u, "size %zu is too small", size);
        for (std::size_t i = size; i < sizeof buf; ++i) {
            if (buf[i] != kCanary) {
                cr_assert_fail("size %zu: byte %zu written", size, i);
            }
        }
    }
    const Addr b = v6("::1", 443);  // "[::1]" = 5 + NUL
    cr_expect_eq(lj_format_host(buf, 6, b.sa(), b.len), 5u);
    cr_expect_eq(lj_format_host(buf, 5, b.sa(), b.len), 0u);
    const Addr u = unix_addr();
    cr_expect_eq(lj_format_host(buf, sizeof buf, u.sa(), u.len), 0u, "AF_UNIX");
    cr_expect_eq(lj_format_host(buf, sizeof buf, a.sa(), sizeof(sockaddr_in) - 1), 0u,
                 "a sockaddr_in shorter than its family needs");
    cr_expect_eq(lj_format_host(buf, sizeof buf, b.sa(), sizeof(sockaddr_in)), 0u,
                 "a sockaddr_in6 shorter than its family needs");
}

Test(shim_addr, port_of) {
    Addr a = v4("192.0.2.7", 443);
    cr_expect_eq(lj_port_of(a.sa(), a.len), 443);
    a = v4("192.0.2.7", 65535);
    cr_expect_eq(lj_port_of(a.sa(), a.len), 65535);
    a = v4("192.0.2.7", 0);
    cr_expect_eq(lj_port_of(a.sa(), a.len), 0);
    a = v6("::1", 8443);
    cr_expect_eq(lj_port_of(a.sa(), a.len), 8443);
    a = v6("::ffff:1.2.3.4", 1);
    cr_expect_eq(lj_port_of(a.sa(), a.len), 1);
    const Addr u = unix_addr();
    cr_expect_eq(lj_port_of(u.sa(), u.len), 0);
}

Test(shim_addr, is_loopback) {
    const char* yes4[] = {"127.0.0.1", "127.0.0.0", "127.1.2.3", "127.255.255.255"};
    const char* no4[] = {"126.255.255.255", "128.0.0.1",  "0.0.0.0",
                         "10.0.0.1",        "198.18.0.1", "255.255.255.255"};
    const char* yes6[] = {"::1", "::ffff:127.0.0.1", "::ffff:127.9.9.9"};
    const char* no6[] = {"::",          "::2",     "::ffff:128.0.0.1", "::ffff:10.0.0.1",
                         "2001:db8::1", "fe80::1", "::127.0.0.1",      "::1:0:0:1"};
    for (const char* s : yes4) {
        const Addr a = v4(s, 80);
        cr_expect_eq(lj_is_loopback(a.sa(), a.len), 1, "%s is loopback", s);
    }
    for (const char* s : no4) {
        const Addr a = v4(s, 80);
        cr_expect_eq(lj_is_loopback(a.sa(), a.len), 0, "%s is not loopback", s);
    }
    for (const char* s : yes6) {
        const Addr a = v6(s, 80);
        cr_expect_eq(lj_is_loopback(a.sa(), a.len), 1, "%s is loopback", s);
    }
    for (const char* s : no6) {
        const Addr a = v6(s, 80);
        cr_expect_eq(lj_is_loopback(a.sa(), a.len), 0, "%s is not loopback", s);
    }
    const Addr u = unix_addr();
    cr_expect_eq(lj_is_loopback(u.sa(), u.len), 0, "AF_UNIX");
    const Addr l = v4("127.0.0.1", 80);
    cr_expect_eq(lj_is_loopback(l.sa(), 2), 0, "a length too short to hold the address");
}

Test(shim_addr, same_endpoint) {
    struct Row {
        Addr a, b;
        int want;
        const char* what;
    };
    const Row rows[] = {
        {v4("127.0.0.1", 3128), v4("127.0.0.1", 3128), 1, "same IPv4"},
        {v4("127.0.0.1", 3128), v4("127.0.0.1", 3129), 0, "other port"},
        {v4("127.0.0.1", 3128), v4("127.0.0.2", 3128), 0, "other address"},
        {v6("::1", 3128), v6("::1", 3128), 1, "same IPv6"},
        {v6("::1", 3128), v6("::1", 80), 0, "IPv6 other port"},
        {v6("::1", 3128), v6("::2", 3128), 0, "IPv6 other address"},
        {v6("::ffff:127.0.0.1", 3128), v4("127.0.0.1", 3128), 1, "v4-mapped = IPv4"},
        {v4("127.0.0.1", 3128), v6("::ffff:127.0.0.1", 3128), 1, "IPv4 = v4-mapped"},
        {v4("127.0.0.1", 3128), v6("::ffff:127.0.0.1", 80), 0, "v4-mapped, other port"},
        {v4("127.0.0.1", 3128), v6("::ffff:127.0.0.2", 3128), 0, "v4-mapped, other address"},
        {v4("127.0.0.1", 3128), v6("::1", 3128), 0, "127.0.0.1 is not ::1"},
        {v4("0.0.0.1", 3128), v6("::1", 3128), 0, "0.0.0.1 is not ::1 (low bits only)"},
        {v4("127.0.0.1", 3128), v6("::127.0.0.1", 3128), 0, "v4-compatible is not v4-mapped"},
        {unix_addr(), unix_addr(), 0, "AF_UNIX"},
        {v4("127.0.0.1", 3128), unix_addr(), 0, "IPv4 and AF_UNIX"},
    };
    for (const Row& r : rows) {
        cr_expect_eq(lj_same_endpoint(r.a.sa(), r.a.len, r.b.sa(), r.b.len), r.want, "%s", r.what);
    }
    const Addr a = v4("127.0.0.1", 3128);
    cr_expect_eq(lj_same_endpoint(a.sa(), 4, a.sa(), a.len), 0, "a truncated first address");
    cr_expect_eq(lj_same_endpoint(a.sa(), a.len, a.sa(), 4), 0, "a truncated second address");
    // sin6_flowinfo does not name another endpoint
    Addr f = v6("::1", 3128);
    reinterpret_cast<sockaddr_in6&>(f.ss).sin6_flowinfo = htonl(5);
    const Addr g = v6("::1", 3128);
    cr_expect_eq(lj_same_endpoint(f.sa(), f.len, g.sa(), g.len), 1, "flowinfo is ignored");
}

// ---- proxy URL --------------------------------------------------------------------------

namespace {

struct UrlCase {
    char* url;
    int family;  // 0: must fail
    char* addr;
    unsigned port;
};

struct UrlRow {
    const char* url;
    int family;
    const char* addr;
    unsigned port;
};

const UrlRow kUrlRows[] = {
    {"http://127.0.0.1:3128", AF_INET, "127.0.0.1", 3128},
    {"http://127.0.0.1:3128/", AF_INET, "127.0.0.1", 3128},
    {"http://127.0.0.1:1", AF_INET, "127.0.0.1", 1},
    {"http://127.0.0.1:65535", AF_INET, "127.0.0.1", 65535},
    {"http://10.1.2.3:8080", AF_INET, "10.1.2.3", 8080},
    {"http://[::1]:8080", AF_INET6, "::1", 8080},
    {"http://[::1]:8080/", AF_INET6, "::1", 8080},
    {"http://[2001:db8::5]:443", AF_INET6, "2001:db8::5", 443},
    {"", 0, "", 0},
    {"http://", 0, "", 0},
    {"127.0.0.1:3128", 0, "", 0},
    {"https://127.0.0.1:3128", 0, "", 0},
    {"socks5://127.0.0.1:3128", 0, "", 0},
    {"http://localhost:3128", 0, "", 0},
    {"http://proxy.example:3128", 0, "", 0},
    {"http://127.0.0.1:", 0, "", 0},
    {"http://127.0.0.1:65536", 0, "", 0},
    {"http://127.0.0.1:99999999999", 0, "", 0},
    {"http://127.0.0.1:-1", 0, "", 0},
    {"http://127.0.0.1:31x", 0, "", 0},
    {"http://127.0.0.1:3128 ", 0, "", 0},
    {"http://127.0.0.1:3128/path", 0, "", 0},
    {"http://127.0.0.1:3128?x", 0, "", 0},
    {"http://user:pw@127.0.0.1:3128", 0, "", 0},
    {"http://127.0.0.256:3128", 0, "", 0},
    {"http://1.2.3:3128", 0, "", 0},
    {"http://::1:8080", 0, "", 0},
    {"http://[::1:8080", 0, "", 0},
    {"http://[::1]8080", 0, "", 0},
    {"http://[127.0.0.1]:8080", 0, "", 0},
    {"http://[fe80::1%eth0]:8080", 0, "", 0},
};

}  // namespace

ParameterizedTestParameters(shim_url, parse_proxy_url) {
    static criterion::parameters<UrlCase> params;
    if (params.empty()) {
        for (const UrlRow& r : kUrlRows) {
            params.push_back(UrlCase{cr_str(r.url), r.family, cr_str(r.addr), r.port});
        }
    }
    return params;
}

ParameterizedTest(UrlCase* c, shim_url, parse_proxy_url) {
    sockaddr_storage ss;
    std::memset(&ss, 0xA5, sizeof ss);
    socklen_t len = 12345;
    const int rc = lj_parse_proxy_url(c->url, &ss, &len);
    const std::string url = printable(c->url);
    if (c->family == 0) {
        cr_expect_eq(rc, -1, "lj_parse_proxy_url(\"%s\") should fail", url.c_str());
        return;
    }
    cr_assert_eq(rc, 0, "lj_parse_proxy_url(\"%s\") failed", url.c_str());
    const Addr want = c->family == AF_INET ? v4(c->addr, static_cast<std::uint16_t>(c->port))
                                           : v6(c->addr, static_cast<std::uint16_t>(c->port));
    cr_expect_eq(ss.ss_family, c->family, "%s: family", url.c_str());
    cr_expect_eq(len, want.len, "%s: length %u, expected %u", url.c_str(), len, want.len);
    cr_expect_eq(lj_same_endpoint(reinterpret_cast<const sockaddr*>(&ss), len, want.sa(), want.len),
                 1, "%s: not %s port %u", url.c_str(), c->addr, c->port);
    cr_expect_eq(lj_port_of(reinterpret_cast<const sockaddr*>(&ss), len), c->port);
    if (c->family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
        cr_expect_eq(in6.sin6_flowinfo, 0u, "%s: flowinfo set", url.c_str());
        cr_expect_eq(in6.sin6_scope_id, 0u, "%s: scope set", url.c_str());
    } else {
        const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
        const unsigned char zero[sizeof in.sin_zero] = {};
        cr_expect_arr_eq(in.sin_zero, zero, sizeof zero, "%s: sin_zero not cleared", url.c_str());
    }
}

// ---- CONNECT request --------------------------------------------------------------------

Test(shim_connect, format_connect) {
    char buf[600];
    std::size_t n = lj_format_connect(buf, sizeof buf, "origin.test", 443);
    const std::string want = "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n";
    cr_expect_eq(n, want.size());
    cr_expect_eq(std::string(buf, n), want, "got \"%s\"", printable(std::string(buf, n)).c_str());
    n = lj_format_connect(buf, sizeof buf, "[2001:db8::1]", 8443);
    cr_expect_eq(std::string(buf, n),
                 std::string("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443"
                             "\r\n\r\n"));
    n = lj_format_connect(buf, sizeof buf, "192.0.2.7", 1);
    cr_expect_eq(std::string(buf, n),
                 std::string("CONNECT 192.0.2.7:1 HTTP/1.1\r\nHost: 192.0.2.7:1\r\n\r\n"));
    n = lj_format_connect(buf, sizeof buf, "a", 65535);
    cr_expect_eq(std::string(buf, n),
                 std::string("CONNECT a:65535 HTTP/1.1\r\nHost: a:65535\r\n\r\n"));
    // The longest name fits a buffer of the obvious size.
    const std::string n253 = name_of_length(LJ_NAME_MAX);
    n = lj_format_connect(buf, sizeof buf, n253.c_str(), 65535);
    cr_expect_eq(std::string(buf, n),
                 "CONNECT " + n253 + ":65535 HTTP/1.1\r\nHost: " + n253 + ":65535\r\n\r\n");
}

Test(shim_connect, format_connect_sizes) {
    const std::string want = "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n";
    char buf[128];
    std::memset(buf, kCanary, sizeof buf);
    cr_expect_eq(lj_format_connect(buf, want.size() + 1, "origin.test", 443), want.size(),
                 "room for the request and a NUL");
    cr_expect_eq(std::string(buf, want.size()), want);
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{10}, want.size() - 1}) {
        std::memset(buf, kCanary, sizeof buf);
        cr_expect_eq(lj_format_connect(buf, size, "origin.test", 443), 0u, "size %zu", size);
        for (std::size_t i = size; i < sizeof buf; ++i) {
            if (buf[i] != kCanary) {
                cr_assert_fail("size %zu: byte %zu written", size, i);
            }
        }
    }
    // Exactly want.size(): either it fits without a NUL or it does not fit; never more.
    std::memset(buf, kCanary, sizeof buf);
    const std::size_t n = lj_format_connect(buf, want.size(), "origin.test", 443);
    cr_expect(n == 0 || n == want.size(), "size = length: returned %zu", n);
    cr_expect_eq(buf[want.size()], kCanary, "size = length: wrote past the buffer");
}

// A host that would change the request line or add a header must never reach the proxy:
// glibc's getaddrinfo refuses such names (res_hnok), so the shim must not send them either.
// (Not spelled out in core.h; this is what "0 when it does not fit" should also cover.)
Test(shim_connect, format_connect_refuses_hosts_that_break_the_request) {
    char buf[256];
    const char* bad[] = {"evil.test\r\nX-Injected: 1", "a b", "a\nb", "a\rb", "a\tb", ""};
    for (const char* h : bad) {
        cr_expect_eq(lj_format_connect(buf, sizeof buf, h, 443), 0u,
                     "lj_format_connect(\"%s\") should refuse the host", printable(h).c_str());
    }
}

// ---- CONNECT reply ----------------------------------------------------------------------

Test(shim_connect, parse_reply_complete) {
    struct Row {
        const char* reply;
        int status;
        std::size_t header_len;  // 0: strlen(reply)
    };
    const std::string deny =
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Landjail-Decision: deny\r\n"
        "Content-Length: 31\r\n\r\n";
    const Row rows[] = {
        {"HTTP/1.1 200 Connection established\r\n\r\n", 200, 0},
        {"HTTP/1.0 200 OK\r\n\r\n", 200, 0},
        {"HTTP/1.1 200 OK\r\nProxy-Agent: landjail\r\nX-A: b\r\n\r\n", 200, 0},
        {"HTTP/1.1 200\r\n\r\n", 200, 0},
        {"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", 502, 0},
        {"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", 407, 0},
    };
    for (const Row& r : rows) {
        int status = -7;
        std::size_t hl = 9999;
        const std::size_t len = std::strlen(r.reply);
        cr_expect_eq(lj_parse_connect_reply(r.reply, len, &status, &hl), 1, "\"%s\"",
                     printable(r.reply).c_str());
        cr_expect_eq(status, r.status, "\"%s\"", printable(r.reply).c_str());
        cr_expect_eq(hl, r.header_len ? r.header_len : len, "\"%s\"", printable(r.reply).c_str());
    }
    // A 403 with a body: the header length stops at the blank line.
    const std::string full = deny + "CONNECT evil.test:443 is denied";
    int status = 0;
    std::size_t hl = 0;
    cr_expect_eq(lj_parse_connect_reply(full.data(), full.size(), &status, &hl), 1);
    cr_expect_eq(status, 403);
    cr_expect_eq(hl, deny.size());
    // Bytes after the blank line (the first bytes of the tunnel) are not part of the header.
    const std::string ok = "HTTP/1.1 200 OK\r\n\r\n";
    const std::string more = ok + "\x16\x03\x01 server bytes";
    cr_expect_eq(lj_parse_connect_reply(more.data(), more.size(), &status, &hl), 1);
    cr_expect_eq(status, 200);
    cr_expect_eq(hl, ok.size());
    // The buffer is not NUL-terminated: only len bytes are read.
    char exact[sizeof "HTTP/1.1 200 OK\r\n\r\n" - 1];
    std::memcpy(exact, ok.data(), sizeof exact);
    cr_expect_eq(lj_parse_connect_reply(exact, sizeof exact, &status, &hl), 1);
    cr_expect_eq(hl, sizeof exact);
}

Test(shim_connect, parse_reply_needs_more_bytes) {
    const std::string reply =
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n";
    for (std::size_t n = 0; n < reply.size(); ++n) {
        int status = 0;
        std::size_t hl = 0;
        const int rc = lj_parse_connect_reply(reply.data(), n, &status, &hl);
        if (rc != 0) {
            cr_assert_fail("a prefix of %zu bytes (\"%s\") returned %d, expected 0 (more)", n,
                           printable(reply.substr(0, n)).c_str(), rc);
        }
    }
    int status = 0;
    std::size_t hl = 0;
    cr_expect_eq(lj_parse_connect_reply(reply.data(), reply.size(), &status, &hl), 1);
    cr_expect_eq(status, 403);
    cr_expect_eq(hl, reply.size());
}

Test(shim_connect, parse_reply_not_http) {
    const char* rows[] = {
        "SSH-2.0-OpenSSH_9.2\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/1.1200 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "\r\n\r\n",
        "<html>\r\n\r\n",
    };
    for (const char* r : rows) {
        int status = 0;
        std::size_t hl = 0;
        cr_expect_eq(lj_parse_connect_reply(r, std::strlen(r), &status, &hl), -1,
                     "\"%s\" is not an HTTP/1.x reply", printable(r).c_str());
    }
    // A binary reply (e.g. a TLS alert from something that is not a proxy).
    const char tls[] = {'\x15', '\x03', '\x03', '\x00', '\x02', '\x02',
                        '\x28', '\r',   '\n',   '\r',   '\n'};
    int status = 0;
    std::size_t hl = 0;
    cr_expect_eq(lj_parse_connect_reply(tls, sizeof tls, &status, &hl), -1, "a TLS alert");
}

Test(shim_connect, reply_reason) {
    char out[64];
    const std::string r403 = "HTTP/1.1 403 Forbidden\r\nX-Landjail-Decision: deny\r\n\r\nbody";
    cr_expect_eq(lj_reply_reason(r403.data(), r403.size(), out, sizeof out), 9u);
    cr_expect_str_eq(out, "Forbidden");
    const std::string r502 = "HTTP/1.1 502 Bad Gateway\r\n\r\n";
    cr_expect_eq(lj_reply_reason(r502.data(), r502.size(), out, sizeof out), 11u);
    cr_expect_str_eq(out, "Bad Gateway");
    const std::string none = "HTTP/1.1 403\r\n\r\n";
    std::memset(out, kCanary, sizeof out);
    cr_expect_eq(lj_reply_reason(none.data(), none.size(), out, sizeof out), 0u);
    cr_expect_str_eq(out, "", "no reason phrase");
    // Only len bytes are read: a reason cut off by len ends there.
    std::memset(out, kCanary, sizeof out);
    const std::size_t n = lj_reply_reason(r403.data(), 16, out, sizeof out);  // "HTTP/1.1 403 For"
    cr_expect(n <= 3 && std::strlen(out) == n, "truncated input: \"%s\" (%zu)",
              printable(out).c_str(), n);
}

Test(shim_connect, reply_reason_sizes) {
    const std::string r = "HTTP/1.1 403 Forbidden\r\n\r\n";
    char out[32];
    std::memset(out, kCanary, sizeof out);
    cr_expect_eq(lj_reply_reason(r.data(), r.size(), out, 4), 3u, "at most size-1 bytes");
    cr_expect_str_eq(out, "For");
    cr_expect_eq(out[4], kCanary);
    std::memset(out, kCanary, sizeof out);
    cr_expect_eq(lj_reply_reason(r.data(), r.size(), out, 10), 9u, "exactly enough room");
    cr_expect_str_eq(out, "Forbidden");
    cr_expect_eq(out[10], kCanary);
    std::memset(out, kCanary, sizeof out);
    cr_expect_eq(lj_reply_reason(r.data(), r.size(), out, 1), 0u);
    cr_expect_eq(out[0], '\0');
    cr_expect_eq(out[1], kCanary);
    std::memset(out, kCanary, sizeof out);
    cr_expect_eq(lj_reply_reason(r.data(), r.size(), out, 0), 0u, "size 0");
    cr_expect_eq(out[0], kCanary, "size 0 writes nothing");
}

Test(shim_connect, reply_reason_of_non_replies) {
    char out[32];
    const char* rows[] = {"", "SSH-2.0-OpenSSH_9.2\r\n", "garbage"};
    for (const char* r : rows) {
        std::memset(out, kCanary, sizeof out);
        const std::size_t n = lj_reply_reason(r, std::strlen(r), out, sizeof out);
        cr_expect(n < sizeof out && out[n] == '\0' && std::strlen(out) == n,
                  "\"%s\": the result is NUL-terminated and its length returned",
                  printable(r).c_str());
    }
}
