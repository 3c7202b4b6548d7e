// SPDX-License-Identifier: Apache-2.0
// The shim's placeholder table (shim/core.h, libljshim_core.a): insert, names, placeholder
// addresses and their indices, lock-free insertion from many threads and from a forked
// process over shared memory.
#include "tests/unit/shim_core_support.hpp"

using namespace lj::test::shim_core_support;

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
