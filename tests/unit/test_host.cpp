// SPDX-License-Identifier: Apache-2.0
// Host canonicalization (canonical_host, Host::authority) and host:port splitting
// (parse_host_port). One case per table line: input, expected result, and for errors a
// '|'-separated list of words one of which the message must contain.
#include <string>

#include "policy/request.hpp"
#include "tests/unit/lj_test.hpp"

using lj::policy::canonical_host;
using lj::policy::Host;
using lj::policy::HostKind;
using lj::policy::parse_host_port;
using lj::test::contains_any;
using lj::test::cr_str;
using lj::test::describe;
using lj::test::printable;

namespace {

/// kind: 'n' name, '4' IPv4, '6' IPv6, 'e' error (then `expect` is the needle list).
struct HostRow {
    const char* input;
    const char* expect;
    char kind;
};

struct HostCase {
    char* input;
    char* expect;
    char kind;
};

const HostRow kHostRows[] = {
    // names: lower-cased, one trailing dot removed
    {"example.com", "example.com", 'n'},
    {"EXAMPLE.COM", "example.com", 'n'},
    {"Example.Com.", "example.com", 'n'},
    {"example.com.", "example.com", 'n'},
    {"localhost", "localhost", 'n'},
    {"a", "a", 'n'},
    {"under_score.example.com", "under_score.example.com", 'n'},
    {"_dmarc.Example.com", "_dmarc.example.com", 'n'},
    {"xn--bcher-kva.de", "xn--bcher-kva.de", 'n'},
    {"a-b.c-d.com", "a-b.c-d.com", 'n'},
    {"123.example.com", "123.example.com", 'n'},
    {"api.GitHub.com", "api.github.com", 'n'},
    // IPv4, including the forms URL parsers accept
    {"1.2.3.4", "1.2.3.4", '4'},
    {"127.0.0.1", "127.0.0.1", '4'},
    {"0.0.0.0", "0.0.0.0", '4'},
    {"255.255.255.255", "255.255.255.255", '4'},
    {"127.1", "127.0.0.1", '4'},
    {"127.0.1", "127.0.0.1", '4'},
    {"0x7f.0.0.1", "127.0.0.1", '4'},
    {"0X7F.0.0.1", "127.0.0.1", '4'},
    {"0x7F.1", "127.0.0.1", '4'},
    {"2130706433", "127.0.0.1", '4'},
    {"0x7f000001", "127.0.0.1", '4'},
    {"0177.0.0.1", "127.0.0.1", '4'},
    {"017700000001", "127.0.0.1", '4'},
    {"4294967295", "255.255.255.255", '4'},
    {"0", "0.0.0.0", '4'},
    {"1.2.3.4.", "1.2.3.4", '4'},
    {"1.2.3.256", "1.2.3.256", 'e'},
    {"1.2.3.4.5", "1.2.3.4.5", 'e'},
    {"256.1.1.1", "256.1.1.1", 'e'},
    {"1.2.65536", "1.2.65536", 'e'},
    {"1.16777216", "1.16777216", 'e'},
    {"4294967296", "4294967296", 'e'},
    {"08.0.0.1", "08.0.0.1", 'e'},
    {"0x1g.0.0.1", "0x1g.0.0.1", 'e'},
    // IPv6: bracketed only, RFC 5952 text, v4-mapped becomes IPv4, no zone ids
    {"[::1]", "::1", '6'},
    {"[0:0:0:0:0:0:0:1]", "::1", '6'},
    {"[::]", "::", '6'},
    {"[2001:DB8::1]", "2001:db8::1", '6'},
    {"[2001:0db8:0000:0000:0000:0000:0000:0001]", "2001:db8::1", '6'},
    {"[2001:db8:0:0:1:0:0:1]", "2001:db8::1:0:0:1", '6'},
    {"[2001:db8:0:1:1:1:1:1]", "2001:db8:0:1:1:1:1:1", '6'},
    {"[fe80::1]", "fe80::1", '6'},
    {"[::FFFF:1.2.3.4]", "1.2.3.4", '4'},
    {"[::ffff:7f00:1]", "127.0.0.1", '4'},
    {"[fe80::1%25eth0]", "fe80::1%25eth0|zone", 'e'},
    {"[fe80::1%eth0]", "fe80::1%eth0|zone", 'e'},
    {"::1", "::1", 'e'},
    {"2001:db8::1", "2001:db8::1", 'e'},
    {"[::1", "[::1", 'e'},
    {"::1]", "::1]", 'e'},
    {"[]", "[]|empty", 'e'},
    {"[1.2.3.4]", "[1.2.3.4]", 'e'},
    {"[::1::2]", "[::1::2]", 'e'},
    {"[12345::]", "[12345::]", 'e'},
    {"[1:2:3:4:5:6:7:8:9]", "[1:2:3:4:5:6:7:8:9]", 'e'},
    {"[::ffff:1.2.3]", "[::ffff:1.2.3]", 'e'},
    {"[::g]", "[::g]", 'e'},
    // empty names and labels
    {"", "empty", 'e'},
    {".", "empty|label", 'e'},
    {".example.com", ".example.com", 'e'},
    {"a..b", "a..b", 'e'},
    {"example.com..", "example.com..", 'e'},
    // characters outside [A-Za-z0-9-_]
    {"exa mple.com", "exa mple.com", 'e'},
    {"a/b", "a/b", 'e'},
    {"a@b", "a@b", 'e'},
    {"a:b", "a:b", 'e'},
    {"a*b.com", "a*b.com", 'e'},
    {"a!b.com", "a!b.com", 'e'},
    {"a%2eb.com", "a%2eb.com", 'e'},
    {"a,b.com", "a,b.com", 'e'},
    {"a\tb.com", "character|invalid", 'e'},
    // non-ASCII names must be written in their xn-- form
    {"b\xc3\xbc"
     "cher.de",
     "xn--", 'e'},
    {"\xe4\xbe\x8b\xe3\x81\x88.jp", "xn--", 'e'},
    {"EXAMPLE.\xc3\x87OM", "xn--", 'e'},
};

std::string repeat(char c, std::size_t n) {
    return std::string(n, c);
}

HostCase make_case(const char* input, const char* expect, char kind) {
    return HostCase{cr_str(input), cr_str(expect), kind};
}

HostKind kind_of(char k) {
    return k == '4' ? HostKind::IPv4 : k == '6' ? HostKind::IPv6 : HostKind::Name;
}

const char* kind_name(HostKind k) {
    return k == HostKind::IPv4 ? "IPv4" : k == HostKind::IPv6 ? "IPv6" : "Name";
}

}  // namespace

ParameterizedTestParameters(host, canonical_host) {
    static criterion::parameters<HostCase> params;
    if (!params.empty()) {
        return params;
    }
    for (const HostRow& r : kHostRows) {
        params.push_back(make_case(r.input, r.expect, r.kind));
    }
    // length limits: 63 characters per label, 253 per name (one trailing dot not counted)
    const std::string l63 = repeat('a', 63);
    const std::string name253 = l63 + "." + l63 + "." + l63 + "." + repeat('b', 61);
    params.push_back(make_case((l63 + ".com").c_str(), (l63 + ".com").c_str(), 'n'));
    params.push_back(make_case((repeat('a', 64) + ".com").c_str(), "63|label|long", 'e'));
    params.push_back(make_case(name253.c_str(), name253.c_str(), 'n'));
    params.push_back(make_case((name253 + ".").c_str(), name253.c_str(), 'n'));
    params.push_back(make_case((name253 + "b").c_str(), "253|long|name", 'e'));
    params.push_back(make_case(("c." + name253).c_str(), "253|long|name", 'e'));
    return params;
}

ParameterizedTest(HostCase* c, host, canonical_host) {
    const std::string in = printable(c->input);
    auto r = canonical_host(c->input);
    if (c->kind == 'e') {
        cr_assert(!r.ok(), "canonical_host(\"%s\") should fail, got \"%s\"", in.c_str(),
                  r.ok() ? r->text.c_str() : "");
        cr_expect(contains_any(r.error().what(), c->expect),
                  "canonical_host(\"%s\"): message \"%s\" should mention %s", in.c_str(),
                  printable(r.error().what()).c_str(), c->expect);
        return;
    }
    cr_assert(r.ok(), "canonical_host(\"%s\") should give \"%s\", got %s", in.c_str(), c->expect,
              describe(r).c_str());
    cr_expect(r->text == c->expect, "canonical_host(\"%s\") = \"%s\", expected \"%s\"", in.c_str(),
              r->text.c_str(), c->expect);
    cr_expect(r->kind == kind_of(c->kind), "canonical_host(\"%s\") kind %s, expected %s",
              in.c_str(), kind_name(r->kind), kind_name(kind_of(c->kind)));
}

Test(host, authority_brackets_ipv6) {
    const Host v6{"::1", HostKind::IPv6};
    const Host v6b{"2001:db8::1", HostKind::IPv6};
    const Host v4{"1.2.3.4", HostKind::IPv4};
    const Host name{"example.com", HostKind::Name};
    cr_expect_eq(v6.authority(), std::string("[::1]"));
    cr_expect_eq(v6b.authority(), std::string("[2001:db8::1]"));
    cr_expect_eq(v4.authority(), std::string("1.2.3.4"));
    cr_expect_eq(name.authority(), std::string("example.com"));
    auto h = canonical_host("[0:0:0:0:0:0:0:1]");
    cr_assert(h.ok(), "%s", describe(h).c_str());
    cr_expect_eq(h->authority(), std::string("[::1]"));
}

Test(host, very_long_host_rejected_cleanly) {
    std::string host;
    for (int i = 0; i < 5000; ++i) {
        host += "a.";
    }
    host += "com";
    auto r = canonical_host(host);
    cr_assert(!r.ok(), "a 5000-label host must be rejected");
    cr_expect(contains_any(r.error().what(), "253|long|name"), "message: %s",
              r.error().what().substr(0, 200).c_str());
    cr_expect(r.error().what().size() < 1024, "the message should not echo 10 KB of host (%zu)",
              r.error().what().size());
}

// ---- parse_host_port ----------------------------------------------------------------------

namespace {

/// kind 'e': error, `host` is the needle list.
struct HostPortRow {
    const char* input;
    unsigned default_port;
    const char* host;
    char kind;
    unsigned port;
};

struct HostPortCase {
    char* input;
    unsigned default_port;
    char* host;
    char kind;
    unsigned port;
};

const HostPortRow kHostPortRows[] = {
    {"example.com:443", 0, "example.com", 'n', 443},
    {"example.com:443", 80, "example.com", 'n', 443},
    {"example.com", 443, "example.com", 'n', 443},
    {"EXAMPLE.com.:80", 0, "example.com", 'n', 80},
    {"example.com:65535", 0, "example.com", 'n', 65535},
    {"example.com:1", 0, "example.com", 'n', 1},
    {"[::1]:8443", 0, "::1", '6', 8443},
    {"[::1]", 80, "::1", '6', 80},
    {"[::ffff:1.2.3.4]:443", 0, "1.2.3.4", '4', 443},
    {"127.1:80", 0, "127.0.0.1", '4', 80},
    {"1.2.3.4:1", 0, "1.2.3.4", '4', 1},
    {"example.com", 0, "port", 'e', 0},
    {"[::1]", 0, "port", 'e', 0},
    {"example.com:0", 0, "port|0", 'e', 0},
    {"example.com:65536", 0, "65536", 'e', 0},
    {"example.com:99999999999", 0, "99999999999", 'e', 0},
    {"example.com:abc", 0, "abc", 'e', 0},
    {"example.com:", 0, "port", 'e', 0},
    {"example.com:-1", 0, "-1", 'e', 0},
    {"example.com:+443", 0, "+443", 'e', 0},
    {"example.com:443:443", 0, "example.com:443", 'e', 0},
    {"::1:80", 0, "::1", 'e', 0},
    {"[::1]x", 0, "[::1]x", 'e', 0},
    {"[::1]:", 0, "port", 'e', 0},
    {":80", 0, "empty|host", 'e', 0},
    {"", 443, "empty|host", 'e', 0},
    {"user@example.com:80", 0, "user@example.com", 'e', 0},
    {"exa mple.com:80", 0, "exa mple.com", 'e', 0},
    {"[fe80::1%25eth0]:443", 0, "zone|fe80::1%25eth0", 'e', 0},
};

}  // namespace

ParameterizedTestParameters(host, parse_host_port) {
    static criterion::parameters<HostPortCase> params;
    if (params.empty()) {
        for (const HostPortRow& r : kHostPortRows) {
            params.push_back(
                HostPortCase{cr_str(r.input), r.default_port, cr_str(r.host), r.kind, r.port});
        }
    }
    return params;
}

ParameterizedTest(HostPortCase* c, host, parse_host_port) {
    const std::string in = printable(c->input);
    auto r = parse_host_port(c->input, static_cast<std::uint16_t>(c->default_port));
    if (c->kind == 'e') {
        cr_assert(!r.ok(), "parse_host_port(\"%s\", %u) should fail, got %s:%u", in.c_str(),
                  c->default_port, r.ok() ? r->host.text.c_str() : "",
                  r.ok() ? static_cast<unsigned>(r->port) : 0U);
        cr_expect(contains_any(r.error().what(), c->host),
                  "parse_host_port(\"%s\"): message \"%s\" should mention %s", in.c_str(),
                  printable(r.error().what()).c_str(), c->host);
        return;
    }
    cr_assert(r.ok(), "parse_host_port(\"%s\", %u): %s", in.c_str(), c->default_port,
              describe(r).c_str());
    cr_expect(r->host.text == c->host, "parse_host_port(\"%s\") host \"%s\", expected \"%s\"",
              in.c_str(), r->host.text.c_str(), c->host);
    cr_expect(r->host.kind == kind_of(c->kind), "parse_host_port(\"%s\") kind %s", in.c_str(),
              kind_name(r->host.kind));
    cr_expect(r->port == c->port, "parse_host_port(\"%s\") port %u, expected %u", in.c_str(),
              static_cast<unsigned>(r->port), c->port);
}
