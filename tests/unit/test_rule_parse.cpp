// SPDX-License-Identifier: Apache-2.0
// Rule grammar (parse_rule): one case per table line. Valid rows give a summary of the parsed
// rule; error rows give words one of which the message must contain, and every error message
// must also quote the rule as written.
#include <string>

#include "policy/rule.hpp"
#include "tests/unit/lj_test.hpp"

using lj::policy::HostPattern;
using lj::policy::parse_rule;
using lj::policy::Rule;
using lj::test::contains_any;
using lj::test::cr_str;
using lj::test::describe;
using lj::test::printable;

namespace {

/// host: "*" any, "name:a.*.b", "ipv4:1.2.3.4", "ipv6:::1".
/// methods: comma list, "" any. paths: number of path patterns. ports: comma list.
/// key: HostPattern::index_key(). For errors (ok == false) only `needle` is used.
struct RuleRow {
    const char* text;
    bool ok;
    const char* host;
    const char* key;
    const char* methods;
    int paths;
    const char* ports;
    const char* needle;
};

struct RuleCase {
    char* text;
    bool ok;
    char* host;
    char* key;
    char* methods;
    int paths;
    char* ports;
    char* needle;
};

#define LJ_RULE(text, host, key, methods, paths, ports) \
    { text, true, host, key, methods, paths, ports, nullptr }
#define LJ_BAD(text, needle) \
    { text, false, nullptr, nullptr, nullptr, 0, nullptr, needle }

const RuleRow kRows[] = {
    // domain=
    LJ_RULE("domain=github.com", "name:github.com", "github.com", "", 0, ""),
    LJ_RULE("domain=GitHub.COM", "name:github.com", "github.com", "", 0, ""),
    LJ_RULE("domain=*.github.com", "name:*.github.com", "github.com", "", 0, ""),
    LJ_RULE("domain=api.*.example.com", "name:api.*.example.com", "example.com", "", 0, ""),
    LJ_RULE("domain=*.*.example.com", "name:*.*.example.com", "example.com", "", 0, ""),
    LJ_RULE("domain=*", "*", "", "", 0, ""),
    LJ_RULE("domain=localhost", "name:localhost", "localhost", "", 0, ""),
    LJ_RULE("domain=xn--bcher-kva.de", "name:xn--bcher-kva.de", "xn--bcher-kva.de", "", 0, ""),
    LJ_RULE("domain=_acme.example.com", "name:_acme.example.com", "_acme.example.com", "", 0, ""),
    LJ_RULE("domain=a.b.c.d.example.com", "name:a.b.c.d.example.com", "a.b.c.d.example.com", "", 0,
            ""),
    LJ_RULE("domain=1.2.3.4", "ipv4:1.2.3.4", "1.2.3.4", "", 0, ""),
    LJ_RULE("domain=[::1]", "ipv6:::1", "::1", "", 0, ""),
    LJ_RULE("domain=[0:0:0:0:0:0:0:1]", "ipv6:::1", "::1", "", 0, ""),
    LJ_RULE("domain=[2001:DB8::1]", "ipv6:2001:db8::1", "2001:db8::1", "", 0, ""),
    LJ_RULE("domain=[::ffff:1.2.3.4]", "ipv4:1.2.3.4", "1.2.3.4", "", 0, ""),
    // method=
    LJ_RULE("domain=a.com method=GET", "name:a.com", "a.com", "GET", 0, ""),
    LJ_RULE("domain=a.com method=get", "name:a.com", "a.com", "GET", 0, ""),
    LJ_RULE("domain=a.com method=GET,head", "name:a.com", "a.com", "GET,HEAD", 0, ""),
    LJ_RULE("domain=a.com method=*", "name:a.com", "a.com", "", 0, ""),
    LJ_RULE("domain=a.com method=GET,POST,PUT,DELETE,PATCH", "name:a.com", "a.com",
            "GET,POST,PUT,DELETE,PATCH", 0, ""),
    LJ_RULE("domain=a.com method=m-search", "name:a.com", "a.com", "M-SEARCH", 0, ""),
    LJ_RULE("domain=a.com method=PURGE,FETCH", "name:a.com", "a.com", "PURGE,FETCH", 0, ""),
    // path=
    LJ_RULE("domain=a.com path=/api/*", "name:a.com", "a.com", "", 1, ""),
    LJ_RULE("domain=a.com path=/api/*,/v1/users", "name:a.com", "a.com", "", 2, ""),
    LJ_RULE("domain=a.com path=/", "name:a.com", "a.com", "", 1, ""),
    LJ_RULE("domain=a.com path=/v1/*/items", "name:a.com", "a.com", "", 1, ""),
    LJ_RULE("domain=a.com path=/*", "name:a.com", "a.com", "", 1, ""),
    LJ_RULE("domain=a.com path=/a/b/c,/d,/e/*", "name:a.com", "a.com", "", 3, ""),
    LJ_RULE("domain=a.com path=/~user/x", "name:a.com", "a.com", "", 1, ""),
    // port=
    LJ_RULE("domain=a.com port=443", "name:a.com", "a.com", "", 0, "443"),
    LJ_RULE("domain=a.com port=443,8443", "name:a.com", "a.com", "", 0, "443,8443"),
    LJ_RULE("domain=a.com port=1", "name:a.com", "a.com", "", 0, "1"),
    LJ_RULE("domain=a.com port=65535", "name:a.com", "a.com", "", 0, "65535"),
    // combinations, order and whitespace
    LJ_RULE("domain=github.com method=GET path=/api/* port=443", "name:github.com", "github.com",
            "GET", 1, "443"),
    LJ_RULE("method=GET domain=a.com", "name:a.com", "a.com", "GET", 0, ""),
    LJ_RULE("  domain=github.com   method=GET  ", "name:github.com", "github.com", "GET", 0, ""),
    LJ_RULE("domain=a.com\tmethod=GET", "name:a.com", "a.com", "GET", 0, ""),
    LJ_RULE("domain=a.com \t method=POST\t\tport=80", "name:a.com", "a.com", "POST", 0, "80"),
    LJ_RULE("port=8080 path=/x method=put domain=*.a.com", "name:*.a.com", "a.com", "PUT", 1,
            "8080"),

    // empty and malformed rules
    LJ_BAD("", "empty"),
    LJ_BAD("   ", "empty"),
    LJ_BAD("\t", "empty"),
    LJ_BAD("github.com", "=|key"),
    LJ_BAD("domain=a.com extra", "'='|\"=\"|key"),
    LJ_BAD("=github.com", "key|empty"),
    // unknown keys (keys are lower-case only)
    LJ_BAD("host=x", "unknown|key"),
    LJ_BAD("DOMAIN=x.com", "unknown|key"),
    LJ_BAD("Domain=x.com", "unknown|key"),
    LJ_BAD("domain=a.com foo=bar", "unknown|key"),
    LJ_BAD("domains=a.com", "unknown|key"),
    // repeated keys
    LJ_BAD("domain=a.com domain=b.com", "repeat|twice|duplicate|more than once|again|already"),
    LJ_BAD("domain=a.com method=GET method=POST",
           "repeat|twice|duplicate|more than once|again|already"),
    LJ_BAD("domain=a.com path=/a path=/b", "repeat|twice|duplicate|more than once|again|already"),
    LJ_BAD("domain=a.com port=1 port=2", "repeat|twice|duplicate|more than once|again|already"),
    // empty values
    LJ_BAD("domain=", "empty|missing|value"),
    LJ_BAD("domain=a.com method=", "empty|missing|value"),
    LJ_BAD("domain=a.com path=", "empty|missing|value"),
    LJ_BAD("domain=a.com port=", "empty|missing|value"),
    // no domain=: boundary's rule for every host (DESIGN §4; build_settings warns, --strict
    // refuses), e.g. the docs' path=/api/v1/*,/api/v2/*
    LJ_RULE("method=GET", "-", "", "GET", 0, ""),
    LJ_RULE("path=/api/*", "-", "", "", 1, ""),
    LJ_RULE("path=/api/v1/*,/api/v2/*", "-", "", "", 2, ""),
    LJ_RULE("port=443", "-", "", "", 0, "443"),
    LJ_RULE("method=GET path=/x port=1", "-", "", "GET", 1, "1"),
    // domain= values
    LJ_BAD("domain=https://github.com", "scheme|https"),
    LJ_BAD("domain=http://x.com", "scheme|http"),
    LJ_BAD("domain=github.com:443", "port|443"),
    LJ_BAD("domain=[::1]:443", "port|443"),
    LJ_BAD("domain=github.com/path", "path|/"),
    LJ_BAD("domain=github.*", "end|last|wildcard|label"),
    LJ_BAD("domain=*.github.*", "end|last|wildcard|label"),
    LJ_BAD("domain=*.*", "end|last|wildcard|label"),
    LJ_BAD("domain=git*.com", "whole|label|wildcard"),
    LJ_BAD("domain=*github.com", "whole|label|wildcard"),
    LJ_BAD("domain=**.github.com", "whole|label|wildcard"),
    LJ_BAD("domain=b\xc3\xbc"
           "cher.de",
           "xn--"),
    LJ_BAD("domain=a..b.com", "label|empty"),
    LJ_BAD("domain=.github.com", "label|empty"),
    LJ_BAD("domain=a@b.com", "a@b.com"),
    LJ_BAD("domain=a.com,b.com", "a.com,b.com"),
    LJ_BAD("domain=::1", "::1"),
    LJ_BAD("domain=[::1", "[::1"),
    LJ_BAD("domain=[fe80::1%25eth0]", "zone|fe80"),
    LJ_BAD("domain=1.2.3.256", "1.2.3.256"),
    LJ_BAD("domain==a.com", "=a.com"),
    // method= values
    LJ_BAD("domain=a.com method=GE(T", "GE(T"),
    LJ_BAD("domain=a.com method=G@T", "G@T"),
    LJ_BAD("domain=a.com method=GET,,HEAD", "empty|,,"),
    LJ_BAD("domain=a.com method=GET,", "empty|,"),
    LJ_BAD("domain=a.com method=,GET", "empty|,"),
    LJ_BAD("domain=a.com method=*,G(T", "G(T"),
    // one typo away from a registered method: a deny rule with it would deny nothing
    LJ_BAD("domain=a.com method=GTE", "did you mean GET?"),
    LJ_BAD("domain=a.com method=delte", "did you mean DELETE?"),
    LJ_BAD("domain=a.com method=GET,PSOT", "did you mean POST?"),
    LJ_BAD("domain=a.com method=HAED", "did you mean HEAD?"),
    LJ_BAD("domain=a.com method=PUTS", "did you mean PUT?"),
    // the messages name the rule the user meant
    LJ_BAD("domain=github.com:8443", "write domain=github.com port=8443"),
    LJ_BAD("domain=[::1]:8080", "write domain=[::1] port=8080"),
    LJ_BAD("domain=https://api.github.com/repos", "domain=api.github.com)"),
    LJ_BAD("domain=a.com,b.com", "one rule for each host"),
    LJ_BAD("domain=a.com path=api", "write /api"),
    // port= values
    LJ_BAD("domain=a.com port=0", "0"),
    LJ_BAD("domain=a.com port=70000", "70000"),
    LJ_BAD("domain=a.com port=65536", "65536"),
    LJ_BAD("domain=a.com port=https", "https"),
    LJ_BAD("domain=a.com port=-1", "-1"),
    LJ_BAD("domain=a.com port=+443", "+443"),
    LJ_BAD("domain=a.com port=443,,8443", "empty|,,"),
    LJ_BAD("domain=a.com port=443,", "empty|,"),
    LJ_BAD("domain=a.com port=*,abc", "abc"),
    // path= values
    LJ_BAD("domain=a.com path=/api/v*", "segment|whole|wildcard"),
    LJ_BAD("domain=a.com path=/api/*x", "segment|whole|wildcard"),
    LJ_BAD("domain=a.com path=/a/../b", "dot|segment|'..'|\"..\""),
    LJ_BAD("domain=a.com path=/a/./b", "dot|segment|'.'|\".\""),
    LJ_BAD("domain=a.com path=/..", "dot|segment|'..'|\"..\""),
    LJ_BAD("domain=a.com path=api/*", "start|begin|absolute|'/'"),
    LJ_BAD("domain=a.com path=*", "start|begin|absolute|'/'"),
    LJ_BAD("domain=a.com path=/a,,/b", "empty|,,"),
    LJ_BAD("domain=a.com path=/a,", "empty|,"),
    LJ_BAD("domain=a.com path=/a\\b", "\\|backslash"),
    LJ_BAD("domain=a.com path=/%zz", "escape|%zz"),
};

#undef LJ_RULE
#undef LJ_BAD

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : ",") + s;
    }
    return out;
}

std::string summarize_host(const Rule& r) {
    if (!r.host) {
        return "-";
    }
    switch (r.host->kind) {
        case HostPattern::Kind::Any:
            return "*";
        case HostPattern::Kind::IPv4:
            return "ipv4:" + r.host->address;
        case HostPattern::Kind::IPv6:
            return "ipv6:" + r.host->address;
        case HostPattern::Kind::Name: {
            std::string out;
            for (const auto& l : r.host->labels) {
                out += (out.empty() ? "" : ".") + l;
            }
            return "name:" + out;
        }
    }
    return "?";
}

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) {
        return {};
    }
    const auto e = s.find_last_not_of(" \t");
    return std::string(s.substr(b, e - b + 1));
}

}  // namespace

ParameterizedTestParameters(rule, parse) {
    static criterion::parameters<RuleCase> params;
    if (params.empty()) {
        for (const RuleRow& r : kRows) {
            params.push_back(RuleCase{cr_str(r.text), r.ok, cr_str(r.host), cr_str(r.key),
                                      cr_str(r.methods), r.paths, cr_str(r.ports),
                                      cr_str(r.needle)});
        }
        // a 64-character label
        const std::string long_label = "domain=" + std::string(64, 'x') + ".com";
        params.push_back(RuleCase{cr_str(long_label), false, nullptr, nullptr, nullptr, 0, nullptr,
                                  cr_str("63|label|long")});
    }
    return params;
}

ParameterizedTest(RuleCase* c, rule, parse) {
    const std::string row = printable(c->text);
    auto r = parse_rule(c->text, "test");
    if (!c->ok) {
        cr_assert(!r.ok(), "parse_rule(\"%s\") should fail, got host %s", row.c_str(),
                  r.ok() ? summarize_host(*r).c_str() : "");
        const std::string what = r.error().what();
        cr_expect(contains_any(what, c->needle),
                  "parse_rule(\"%s\"): message \"%s\" should mention %s", row.c_str(),
                  printable(what).c_str(), c->needle);
        const std::string quoted = trim(c->text);
        cr_expect(quoted.empty() || what.find(quoted) != std::string::npos,
                  "parse_rule(\"%s\"): message \"%s\" should quote the rule", row.c_str(),
                  printable(what).c_str());
        return;
    }
    cr_assert(r.ok(), "parse_rule(\"%s\"): %s", row.c_str(), describe(r).c_str());
    cr_expect(r->text == trim(c->text), "parse_rule(\"%s\"): text \"%s\"", row.c_str(),
              printable(r->text).c_str());
    cr_expect(r->origin == "test", "parse_rule(\"%s\"): origin \"%s\"", row.c_str(),
              r->origin.c_str());
    const std::string host = summarize_host(*r);
    cr_expect(host == c->host, "parse_rule(\"%s\"): host %s, expected %s", row.c_str(),
              host.c_str(), c->host);
    if (r->host) {
        cr_expect(r->host->index_key() == c->key,
                  "parse_rule(\"%s\"): index_key \"%s\", expected \"%s\"", row.c_str(),
                  r->host->index_key().c_str(), c->key);
    }
    const std::string methods = join(r->methods);
    cr_expect(methods == c->methods, "parse_rule(\"%s\"): methods \"%s\", expected \"%s\"",
              row.c_str(), methods.c_str(), c->methods);
    cr_expect(r->paths.size() == static_cast<std::size_t>(c->paths),
              "parse_rule(\"%s\"): %zu path patterns, expected %d", row.c_str(), r->paths.size(),
              c->paths);
    std::string ports;
    for (const auto p : r->ports) {
        ports += (ports.empty() ? "" : ",") + std::to_string(p);
    }
    cr_expect(ports == c->ports, "parse_rule(\"%s\"): ports \"%s\", expected \"%s\"", row.c_str(),
              ports.c_str(), c->ports);
}

Test(rule, origin_is_kept) {
    auto r = parse_rule("domain=a.com", "cfg.yaml:3:5");
    cr_assert(r.ok(), "%s", describe(r).c_str());
    cr_expect_eq(r->origin, std::string("cfg.yaml:3:5"));
    auto d = parse_rule("domain=a.com");
    cr_assert(d.ok(), "%s", describe(d).c_str());
    cr_expect(d->origin.empty(), "default origin is empty, got \"%s\"", d->origin.c_str());
}

Test(rule, method_star_means_any) {
    auto r = parse_rule("domain=* method=*");
    cr_assert(r.ok(), "%s", describe(r).c_str());
    for (const char* m : {"GET", "DELETE", "PATCH", "PROPFIND"}) {
        cr_expect(r->matches_method(m), "method=* must match %s", m);
    }
}

Test(rule, long_rule_rejected_cleanly) {
    std::string text = "domain=";
    for (int i = 0; i < 5000; ++i) {
        text += "a.";
    }
    text += "com";
    auto r = parse_rule(text);
    cr_assert(!r.ok(), "a 5000-label domain must be rejected");
    cr_expect(contains_any(r.error().what(), "253|long|name"), "message: %s",
              r.error().what().substr(0, 200).c_str());
}
