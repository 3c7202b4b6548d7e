// SPDX-License-Identifier: Apache-2.0
// The shim's CONNECT request and reply (shim/core.h): formatting the request (sizes, hosts
// that would break it), parsing the reply (complete, needing more bytes, not HTTP) and its
// reason, including the buffer-size edges (a canary after the buffer must never change).
#include "tests/unit/shim_core_support.hpp"

using namespace lj::test::shim_core_support;

// ---- CONNECT request --------------------------------------------------------------------

Test(shim_connect, format_connect) {
    char buf[600];
    std::size_t n = lj_format_connect(buf, sizeof buf, "origin.test", 443);
    const std::string want =
        "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\nX-Landjail-Tunnel: "
        "raw\r\n\r\n";
    cr_expect_eq(n, want.size());
    cr_expect_eq(std::string(buf, n), want, "got \"%s\"", printable(std::string(buf, n)).c_str());
    n = lj_format_connect(buf, sizeof buf, "[2001:db8::1]", 8443);
    cr_expect_eq(std::string(buf, n),
                 std::string("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443"
                             "\r\nX-Landjail-Tunnel: raw\r\n\r\n"));
    n = lj_format_connect(buf, sizeof buf, "192.0.2.7", 1);
    cr_expect_eq(
        std::string(buf, n),
        std::string(
            "CONNECT 192.0.2.7:1 HTTP/1.1\r\nHost: 192.0.2.7:1\r\nX-Landjail-Tunnel: raw\r\n\r\n"));
    n = lj_format_connect(buf, sizeof buf, "a", 65535);
    cr_expect_eq(
        std::string(buf, n),
        std::string("CONNECT a:65535 HTTP/1.1\r\nHost: a:65535\r\nX-Landjail-Tunnel: raw\r\n\r\n"));
    // The longest name fits a buffer of the obvious size.
    const std::string n253 = name_of_length(LJ_NAME_MAX);
    n = lj_format_connect(buf, sizeof buf, n253.c_str(), 65535);
    cr_expect_eq(std::string(buf, n), "CONNECT " + n253 + ":65535 HTTP/1.1\r\nHost: " + n253 +
                                          ":65535\r\nX-Landjail-Tunnel: raw\r\n\r\n");
}

Test(shim_connect, format_connect_sizes) {
    const std::string want =
        "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\nX-Landjail-Tunnel: "
        "raw\r\n\r\n";
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
