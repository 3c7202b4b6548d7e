// SPDX-License-Identifier: Apache-2.0
// The shim's address helpers (shim/core.h): numeric hosts, the CONNECT authority, ports,
// loopback and endpoint equality, including the buffer-size edges (a canary after the buffer
// must never change).
#include "tests/unit/shim_core_support.hpp"

using namespace lj::test::shim_core_support;

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
