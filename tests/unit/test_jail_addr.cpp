// SPDX-License-Identifier: Apache-2.0
// The supervisor's address handling: canonical_inet (the child's sockaddr, as the kernel would
// read it), parse_inet (the proxy's address) and InetAddr::text; and resolve_command (what
// execvp would run, with 126/127 for the launcher's exit status).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "landjail/jail/spawn.hpp"
#include "landjail/supervisor/supervisor.hpp"
#include "tests/unit/lj_test.hpp"

using lj::jail::canonical_inet;
using lj::jail::InetAddr;
using lj::jail::parse_inet;
using lj::jail::resolve_command;
using lj::test::contains_any;
using lj::test::cr_str;
using lj::test::describe;

namespace {

sockaddr_storage v4(const char* text, std::uint16_t port) {
    sockaddr_storage sa{};
    auto& in = reinterpret_cast<sockaddr_in&>(sa);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET, text, &in.sin_addr), 1, "%s", text);
    return sa;
}

sockaddr_storage v6(const char* text, std::uint16_t port, std::uint32_t scope = 0) {
    sockaddr_storage sa{};
    auto& in6 = reinterpret_cast<sockaddr_in6&>(sa);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    in6.sin6_scope_id = scope;
    cr_assert_eq(inet_pton(AF_INET6, text, &in6.sin6_addr), 1, "%s", text);
    return sa;
}

InetAddr must_parse(const char* text) {
    const auto a = parse_inet(text);
    cr_assert(a.ok(), "%s: %s", text, describe(a).c_str());
    return *a;
}

}  // namespace

Test(jail_addr, ipv4) {
    const auto a = canonical_inet(v4("127.0.0.1", 3128), sizeof(sockaddr_in));
    cr_assert(a.has_value());
    cr_expect_eq(a->family, AF_INET);
    cr_expect_eq(a->port, 3128);
    cr_expect_eq(a->scope, 0u);
    const unsigned char want[16] = {127, 0, 0, 1};
    cr_expect_arr_eq(a->addr, want, sizeof want);
    cr_expect_eq(a->text(), std::string("127.0.0.1:3128"));
    cr_expect(*a == must_parse("127.0.0.1:3128"));
    cr_expect(*a != must_parse("127.0.0.1:3129"), "the port is part of the address");
    cr_expect(*a != must_parse("127.0.0.2:3128"));
    // A longer buffer (e.g. sizeof(sockaddr_storage)) is fine.
    cr_expect(canonical_inet(v4("127.0.0.1", 3128), sizeof(sockaddr_storage)) == a);
}

Test(jail_addr, ipv6) {
    const auto a = canonical_inet(v6("::1", 443), sizeof(sockaddr_in6));
    cr_assert(a.has_value());
    cr_expect_eq(a->family, AF_INET6);
    cr_expect_eq(a->port, 443);
    cr_expect_eq(a->addr[15], 1);
    cr_expect_eq(a->text(), std::string("[::1]:443"));
    cr_expect(*a == must_parse("[::1]:443"));
    cr_expect(*a != must_parse("127.0.0.1:443"), "::1 is not 127.0.0.1");
    const auto b = canonical_inet(v6("2001:db8::1", 8080), sizeof(sockaddr_in6));
    cr_assert(b.has_value());
    cr_expect_eq(b->text(), std::string("[2001:db8::1]:8080"));
}

Test(jail_addr, ipv6_scope_id) {
    const auto a = canonical_inet(v6("fe80::1", 80, 2), sizeof(sockaddr_in6));
    cr_assert(a.has_value());
    cr_expect_eq(a->scope, 2u);
    const auto b = canonical_inet(v6("fe80::1", 80, 0), sizeof(sockaddr_in6));
    cr_assert(b.has_value());
    cr_expect(*a != *b, "the scope id is part of the address");
}

Test(jail_addr, v4_mapped_is_ipv4) {
    const InetAddr proxy = must_parse("127.0.0.1:3128");
    for (const socklen_t len : {socklen_t{24}, socklen_t{sizeof(sockaddr_in6)}}) {
        const auto a = canonical_inet(v6("::ffff:127.0.0.1", 3128, 7), len);
        cr_assert(a.has_value(), "len %u", len);
        cr_expect_eq(a->family, AF_INET, "len %u", len);
        cr_expect(*a == proxy, "len %u: %s != %s", len, a->text().c_str(), proxy.text().c_str());
        cr_expect_eq(a->text(), std::string("127.0.0.1:3128"));
    }
    cr_expect(must_parse("[::ffff:127.0.0.1]:3128") == proxy);
    cr_expect_eq(must_parse("[::ffff:127.0.0.1]:3128").text(), std::string("127.0.0.1:3128"));
    // IPv4-compatible (::a.b.c.d, deprecated) is not IPv4 to the kernel either.
    const auto compat = canonical_inet(v6("::127.0.0.1", 3128), sizeof(sockaddr_in6));
    cr_assert(compat.has_value());
    cr_expect(*compat != proxy, "::127.0.0.1 must not equal 127.0.0.1");
    const auto other = canonical_inet(v6("::ffff:127.0.0.2", 3128), sizeof(sockaddr_in6));
    cr_assert(other.has_value());
    cr_expect(*other != proxy);
}

Test(jail_addr, rfc2133_sockaddr_in6) {
    // 24 bytes: the RFC 2133 sockaddr_in6 without sin6_scope_id, which the kernel accepts;
    // the scope id lying beyond those bytes is not read.
    const auto a = canonical_inet(v6("::1", 3128, 9), 24);
    cr_assert(a.has_value());
    cr_expect_eq(a->family, AF_INET6);
    cr_expect_eq(a->scope, 0u);
    cr_expect(*a == must_parse("[::1]:3128"));
}

Test(jail_addr, short_or_foreign_rejected) {
    const sockaddr_storage in4 = v4("127.0.0.1", 80);
    const sockaddr_storage in6 = v6("::1", 80);
    for (socklen_t len = 0; len < sizeof(sockaddr_in); ++len) {
        cr_expect(!canonical_inet(in4, len).has_value(), "AF_INET with %u bytes", len);
    }
    for (socklen_t len = 0; len < 24; ++len) {
        cr_expect(!canonical_inet(in6, len).has_value(), "AF_INET6 with %u bytes", len);
    }
    for (const int family : {AF_UNSPEC, AF_UNIX, AF_NETLINK, AF_PACKET}) {
        sockaddr_storage other = in4;
        other.ss_family = static_cast<sa_family_t>(family);
        cr_expect(!canonical_inet(other, sizeof other).has_value(), "family %d", family);
    }
}

namespace {

struct BadRow {
    const char* text;
    const char* needle;
};

struct BadCase {
    char* text;
    char* needle;
};

const BadRow kBadRows[] = {
    {"127.0.0.1", "ADDR:PORT"},
    {"127.0.0.1:", "ADDR:PORT"},
    {"", "ADDR:PORT"},
    {"127.0.0.1:0", "port"},
    {"127.0.0.1:65536", "port"},
    {"127.0.0.1:-1", "port"},
    {"127.0.0.1:99999999999999999999999", "port"},
    {"127.0.0.1:80x", "port"},
    {"127.0.0.1:0x50", "port"},
    {"127.0.0.1:http", "port"},
    {"[::1]:", "ADDR:PORT"},
    {"[::1]", "port|ADDR:PORT"},
    {"localhost:3128", "not an IPv4 or IPv6 address"},
    {":3128", "not an IPv4 or IPv6 address"},
    {"[]:3128", "not an IPv4 or IPv6 address"},
    {"1.2.3:80", "not an IPv4 or IPv6 address"},
    {"256.0.0.1:80", "not an IPv4 or IPv6 address"},
    {"[fe80::1%eth0]:80", "not an IPv4 or IPv6 address"},
    {"[::g]:80", "not an IPv4 or IPv6 address"},
};

}  // namespace

ParameterizedTestParameters(jail_addr, parse_inet_errors) {
    static criterion::parameters<BadCase> params;
    if (params.empty()) {
        for (const BadRow& r : kBadRows) {
            params.push_back(BadCase{cr_str(r.text), cr_str(r.needle)});
        }
    }
    return params;
}

ParameterizedTest(BadCase* c, jail_addr, parse_inet_errors) {
    const auto a = parse_inet(c->text);
    cr_assert(!a.ok(), "'%s': accepted as %s", c->text, a.ok() ? a->text().c_str() : "");
    const std::string what = a.error().what();
    cr_expect(contains_any(what, c->needle), "'%s': error '%s' should mention %s", c->text,
              what.c_str(), c->needle);
    cr_expect(what.find(c->text) != std::string::npos, "'%s': error '%s' should quote the input",
              c->text, what.c_str());
}

Test(jail_addr, parse_inet_ports) {
    cr_expect_eq(must_parse("127.0.0.1:1").port, 1);
    cr_expect_eq(must_parse("127.0.0.1:65535").port, 65535);
    cr_expect_eq(must_parse("[::1]:3128").port, 3128);
    cr_expect_eq(must_parse("[::1]:3128").family, AF_INET6);
    cr_expect_eq(must_parse("[::1]:3128").text(), std::string("[::1]:3128"));
    cr_expect_eq(must_parse("[0:0::1]:3128").text(), std::string("[::1]:3128"));
    cr_expect_eq(must_parse("10.1.2.3:8080").text(), std::string("10.1.2.3:8080"));
}

// ---- resolve_command ----------------------------------------------------------------------

namespace {

/// A fresh directory holding `exe` (0755), `plain` (0644) and the directory `dir`; the test
/// process (Criterion runs each test in its own) changes into it.
std::string make_tree() {
    char tmpl[] = "/tmp/lj-resolve-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", std::strerror(errno));
    const std::string dir = tmpl;
    for (const char* name : {"exe", "plain"}) {
        std::ofstream(dir + "/" + name) << "#!/bin/sh\nexit 0\n";
    }
    cr_assert_eq(chmod((dir + "/exe").c_str(), 0755), 0);
    cr_assert_eq(chmod((dir + "/plain").c_str(), 0644), 0);
    cr_assert_eq(mkdir((dir + "/dir").c_str(), 0755), 0);
    cr_assert_eq(chdir(dir.c_str()), 0);
    return dir;
}

void remove_tree(const std::string& dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

void expect_resolves(const std::string& name, const std::string& path_env,
                     const std::string& path) {
    const auto r = resolve_command(name, path_env);
    cr_expect(r.exit_status == 0 && r.path == path,
              "'%s' in PATH '%s': %d '%s' (%s), expected '%s'", name.c_str(), path_env.c_str(),
              r.exit_status, r.path.c_str(), r.error.c_str(), path.c_str());
}

void expect_fails(const std::string& name, const std::string& path_env, int status) {
    const auto r = resolve_command(name, path_env);
    cr_expect_eq(r.exit_status, status, "'%s' in PATH '%s': %d '%s' (%s), expected %d",
                 name.c_str(), path_env.c_str(), r.exit_status, r.path.c_str(), r.error.c_str(),
                 status);
    cr_expect(r.path.empty(), "'%s': path '%s' on failure", name.c_str(), r.path.c_str());
    if (!name.empty()) {
        cr_expect(r.error.find(name) != std::string::npos, "'%s': error '%s' should name it",
                  name.c_str(), r.error.c_str());
    }
}

}  // namespace

Test(jail_resolve, absolute_and_relative_paths) {
    const std::string d = make_tree();
    expect_resolves("/bin/sh", "", "/bin/sh");
    expect_resolves(d + "/exe", "/nonexistent", d + "/exe");
    expect_resolves("./exe", "/nonexistent", "./exe");
    expect_fails(d + "/missing", "", 127);
    expect_fails(d + "/plain", "", 126);
    expect_fails(d + "/dir", "", 126);
    expect_fails("./plain", d, 126);
    expect_fails("dir/missing", d, 127);
    remove_tree(d);
}

Test(jail_resolve, path_search) {
    const std::string d = make_tree();
    expect_resolves("exe", "/nonexistent:" + d, d + "/exe");
    expect_resolves("exe", d + ":/bin", d + "/exe");
    // An empty element means the working directory: leading, trailing or in the middle.
    expect_resolves("exe", ":/nonexistent", "./exe");
    expect_resolves("exe", "/nonexistent:", "./exe");
    expect_resolves("exe", "/nonexistent::/bin", "./exe");
    // Not executable here, executable later: execvp goes on.
    std::filesystem::copy_file(d + "/plain", d + "/dir/true");  // keeps mode 0644
    expect_resolves("true", d + "/dir:/bin", "/bin/true");
    // A default PATH when none is set.
    const auto sh = resolve_command("sh", "");
    cr_expect(sh.exit_status == 0 && sh.path.size() > 3 &&
                  sh.path.compare(sh.path.size() - 3, 3, "/sh") == 0,
              "sh with no PATH: %d '%s' (%s)", sh.exit_status, sh.path.c_str(), sh.error.c_str());
    remove_tree(d);
}

Test(jail_resolve, path_failures) {
    const std::string d = make_tree();
    expect_fails("plain", d, 126);
    expect_fails("plain", "/nonexistent:" + d + ":/nonexistent", 126);
    expect_fails("plain", "/nonexistent:", 126);
    expect_fails("dir", d, 126);
    expect_fails("lj-no-such-command", d + ":/nonexistent", 127);
    expect_fails("lj-no-such-command", "/bin:/usr/bin", 127);
    expect_fails("", d, 127);
    remove_tree(d);
}
