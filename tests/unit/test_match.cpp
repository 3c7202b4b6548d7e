// SPDX-License-Identifier: Apache-2.0
// Matching: one allow rule, one request, allowed or not; one case per table line. Each row is
// checked three ways: Engine::evaluate on the parsed request, the Rule's own matches_*
// methods, and linear_first_match.
#include <string>
#include <vector>

#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "policy/rule.hpp"
#include "tests/unit/lj_test.hpp"

using lj::policy::Engine;
using lj::policy::HostKind;
using lj::policy::linear_first_match;
using lj::policy::parse_request;
using lj::policy::parse_rule;
using lj::policy::Reason;
using lj::policy::RequestView;
using lj::policy::Rule;
using lj::test::cr_str;
using lj::test::describe;

namespace {

struct MatchRow {
    const char* rule;
    const char* method;
    const char* url;
    bool allowed;
};

struct MatchCase {
    char* rule;
    char* method;
    char* url;
    bool allowed;
};

const MatchRow kRows[] = {
    // domain=name: the name and all its subdomains, case-insensitive, trailing dot ignored
    {"domain=github.com", "GET", "https://github.com/", true},
    {"domain=github.com", "GET", "https://api.github.com/", true},
    {"domain=github.com", "GET", "https://a.b.github.com/", true},
    {"domain=github.com", "GET", "https://GitHub.COM/", true},
    {"domain=github.com", "GET", "https://github.com./", true},
    {"domain=github.com", "GET", "http://github.com:8080/x", true},
    {"domain=github.com", "GET", "https://notgithub.com/", false},
    {"domain=github.com", "GET", "https://xgithub.com/", false},
    {"domain=github.com", "GET", "https://github.com.evil.com/", false},
    {"domain=github.com", "GET", "https://github.co/", false},
    {"domain=github.com", "GET", "https://hub.com/", false},
    {"domain=github.com", "GET", "https://com/", false},
    {"domain=github.com", "GET", "https://github.com-evil.com/", false},
    {"domain=GITHUB.com", "GET", "https://api.github.com/", true},
    // *.name: subdomains only
    {"domain=*.github.com", "GET", "https://api.github.com/", true},
    {"domain=*.github.com", "GET", "https://a.b.github.com/", true},
    {"domain=*.github.com", "GET", "https://github.com/", false},
    {"domain=*.github.com", "GET", "https://notgithub.com/", false},
    {"domain=*.github.com", "GET", "https://api.github.com.evil.com/", false},
    // interior wildcard: one label, right-aligned, subdomains allowed
    {"domain=api.*.example.com", "GET", "https://api.x.example.com/", true},
    {"domain=api.*.example.com", "GET", "https://z.api.x.example.com/", true},
    {"domain=api.*.example.com", "GET", "https://API.X.Example.com/", true},
    {"domain=api.*.example.com", "GET", "https://api.example.com/", false},
    {"domain=api.*.example.com", "GET", "https://api.x.y.example.com/", false},
    {"domain=api.*.example.com", "GET", "https://x.api.example.com/", false},
    {"domain=api.*.example.com", "GET", "https://api.x.example.org/", false},
    {"domain=*.*.example.com", "GET", "https://a.b.example.com/", true},
    {"domain=*.*.example.com", "GET", "https://a.example.com/", false},
    // bare *: every host
    {"domain=*", "GET", "https://example.com/", true},
    {"domain=*", "GET", "http://1.2.3.4/", true},
    {"domain=*", "GET", "http://[::1]/", true},
    {"domain=*", "GET", "http://localhost/", true},
    // IPv4 rules: that address only, in any spelling the URL parser accepts
    {"domain=1.2.3.4", "GET", "http://1.2.3.4/", true},
    {"domain=1.2.3.4", "GET", "http://1.2.3.4:8080/", true},
    {"domain=1.2.3.4", "GET", "http://0x01020304/", true},
    {"domain=1.2.3.4", "GET", "http://16909060/", true},
    {"domain=1.2.3.4", "GET", "http://[::ffff:1.2.3.4]/", true},
    {"domain=1.2.3.4", "GET", "http://1.2.3.5/", false},
    {"domain=1.2.3.4", "GET", "http://1.2.3.4.example.com/", false},
    {"domain=1.2.3.4", "GET", "http://[::1]/", false},
    {"domain=127.0.0.1", "GET", "http://127.1/", true},
    {"domain=127.0.0.1", "GET", "http://localhost/", false},
    // IPv6 rules
    {"domain=[::1]", "GET", "http://[::1]/", true},
    {"domain=[::1]", "GET", "http://[0:0::1]/", true},
    {"domain=[::1]", "GET", "http://[0:0:0:0:0:0:0:1]:8080/", true},
    {"domain=[::1]", "GET", "http://[::2]/", false},
    {"domain=[::1]", "GET", "http://127.0.0.1/", false},
    {"domain=[::1]", "GET", "http://localhost/", false},
    // a name pattern never matches an address
    {"domain=localhost", "GET", "http://127.0.0.1/", false},
    {"domain=example.com", "GET", "http://93.184.216.34/", false},
    {"domain=com", "GET", "http://[::1]/", false},
    // methods: comma list, case-insensitive, any when absent or *
    {"domain=a.com method=GET,HEAD", "GET", "https://a.com/", true},
    {"domain=a.com method=GET,HEAD", "HEAD", "https://a.com/", true},
    {"domain=a.com method=GET,HEAD", "get", "https://a.com/", true},
    {"domain=a.com method=GET,HEAD", "POST", "https://a.com/", false},
    {"domain=a.com method=GET,HEAD", "DELETE", "https://a.com/", false},
    {"domain=a.com method=GET,HEAD", "GETX", "https://a.com/", false},
    {"domain=a.com method=post", "POST", "https://a.com/", true},
    {"domain=a.com method=*", "DELETE", "https://a.com/", true},
    {"domain=a.com", "PATCH", "https://a.com/", true},
    {"domain=* method=GET", "GET", "https://anything.example/", true},
    {"domain=* method=GET", "PUT", "https://anything.example/", false},
    // paths: normalized, segment-wise, case-sensitive
    {"domain=a.com path=/api/*", "GET", "https://a.com/api/x", true},
    {"domain=a.com path=/api/*", "GET", "https://a.com/api/x/y", true},
    {"domain=a.com path=/api/*", "GET", "https://a.com/api/", true},
    {"domain=a.com path=/api/*", "GET", "https://a.com/api/%78", true},
    {"domain=a.com path=/api/*", "GET", "https://a.com/%61pi/x", true},
    {"domain=a.com path=/api/*", "GET", "https://a.com/api/x?a=/admin", true},
    {"domain=a.com path=/api/*", "GET", "https://a.com/api/./x", true},
    {"domain=a.com path=/api/*", "GET", "https://a.com/api", false},
    {"domain=a.com path=/api/*", "GET", "https://a.com/apix", false},
    {"domain=a.com path=/api/*", "GET", "https://a.com/admin", false},
    {"domain=a.com path=/api/*", "GET", "https://a.com/api/../admin", false},
    {"domain=a.com path=/api/*", "GET", "https://a.com/api/%2e%2e/admin", false},
    {"domain=a.com path=/api/*", "GET", "https://a.com/api/%2E%2E/admin", false},
    {"domain=a.com path=/api/*", "GET", "https://a.com/api/.%2e/admin", false},
    {"domain=a.com path=/api/*", "GET", "https://a.com/API/x", false},
    {"domain=a.com path=/api/*", "GET", "https://a.com/admin?x=/api/x", false},
    {"domain=a.com path=/api/*", "GET", "https://a.com//api/x", false},
    {"domain=a.com path=/api/*", "GET", "https://a.com/", false},
    {"domain=a.com path=/v1/*/items", "GET", "https://a.com/v1/a/items", true},
    {"domain=a.com path=/v1/*/items", "GET", "https://a.com/v1/a/b/items", false},
    {"domain=a.com path=/v1/*/items", "GET", "https://a.com/v1/items", false},
    {"domain=a.com path=/v1/*/items", "GET", "https://a.com/v1/a/items/x", false},
    {"domain=a.com path=/v1/*/items", "GET", "https://a.com/v1/a/items/", false},
    {"domain=a.com path=/v1/users", "GET", "https://a.com/v1/users", true},
    {"domain=a.com path=/v1/users", "GET", "https://a.com/v1/users?page=2", true},
    {"domain=a.com path=/v1/users", "GET", "https://a.com/v1/./users", true},
    {"domain=a.com path=/v1/users", "GET", "https://a.com/v1/x/../users", true},
    {"domain=a.com path=/v1/users", "GET", "https://a.com/v1/users/", false},
    {"domain=a.com path=/v1/users", "GET", "https://a.com/v1/users/1", false},
    {"domain=a.com path=/v1/users", "GET", "https://a.com/v1/Users", false},
    {"domain=a.com path=/v1/users", "GET", "https://a.com/v1", false},
    {"domain=a.com path=/", "GET", "https://a.com/", true},
    {"domain=a.com path=/", "GET", "https://a.com", true},
    {"domain=a.com path=/", "GET", "https://a.com/?q=1", true},
    {"domain=a.com path=/", "GET", "https://a.com/a", false},
    {"domain=a.com path=/", "GET", "https://a.com//", false},
    {"domain=a.com path=/a/*", "GET", "https://a.com/a/b%2Fc", true},
    {"domain=a.com path=/a/*", "GET", "https://a.com/a/b%2fc", true},
    {"domain=a.com path=/a/b/c", "GET", "https://a.com/a/b%2Fc", false},
    {"domain=a.com path=/a/b/c", "GET", "https://a.com/a/b/c", true},
    {"domain=a.com path=/a/*/c", "GET", "https://a.com/a/b%2Fx/c", true},
    {"domain=a.com path=/api/*,/v1/users", "GET", "https://a.com/api/x", true},
    {"domain=a.com path=/api/*,/v1/users", "GET", "https://a.com/v1/users", true},
    {"domain=a.com path=/api/*,/v1/users", "GET", "https://a.com/v2", false},
    {"domain=a.com path=/a/*/c/*", "GET", "https://a.com/a/x/c/y", true},
    {"domain=a.com path=/a/*/c/*", "GET", "https://a.com/a/x/c/y/z", true},
    {"domain=a.com path=/a/*/c/*", "GET", "https://a.com/a/x/c", false},
    {"domain=a.com path=/*", "GET", "https://a.com/anything", true},
    {"domain=a.com path=/*", "GET", "https://a.com/a/b/c", true},
    {"domain=a.com path=/~user/*", "GET", "https://a.com/%7Euser/x", true},
    // ports: explicit or the scheme's default
    {"domain=a.com port=443", "GET", "https://a.com/", true},
    {"domain=a.com port=443", "GET", "https://a.com:443/", true},
    {"domain=a.com port=443", "GET", "https://a.com:8443/", false},
    {"domain=a.com port=443", "GET", "http://a.com/", false},
    {"domain=a.com port=443", "GET", "http://a.com:443/", true},
    {"domain=a.com port=80,8080", "GET", "http://a.com/", true},
    {"domain=a.com port=80,8080", "GET", "http://a.com:8080/", true},
    {"domain=a.com port=80,8080", "GET", "https://a.com/", false},
    // every key at once
    {"domain=api.github.com method=GET path=/repos/* port=443", "GET",
     "https://api.github.com/repos/x", true},
    {"domain=api.github.com method=GET path=/repos/* port=443", "GET",
     "https://x.api.github.com/repos/x", true},
    {"domain=api.github.com method=GET path=/repos/* port=443", "POST",
     "https://api.github.com/repos/x", false},
    {"domain=api.github.com method=GET path=/repos/* port=443", "GET", "https://github.com/repos/x",
     false},
    {"domain=api.github.com method=GET path=/repos/* port=443", "GET",
     "https://api.github.com:8443/repos/x", false},
    {"domain=api.github.com method=GET path=/repos/* port=443", "GET",
     "https://api.github.com/user", false},
};

}  // namespace

ParameterizedTestParameters(match, one_rule) {
    static criterion::parameters<MatchCase> params;
    if (params.empty()) {
        for (const MatchRow& r : kRows) {
            params.push_back(MatchCase{cr_str(r.rule), cr_str(r.method), cr_str(r.url), r.allowed});
        }
    }
    return params;
}

ParameterizedTest(MatchCase* c, match, one_rule) {
    auto rule = parse_rule(c->rule, "table");
    cr_assert(rule.ok(), "[%s]: %s", c->rule, describe(rule).c_str());
    auto req = parse_request(c->method, c->url);
    cr_assert(req.ok(), "[%s] %s %s: %s", c->rule, c->method, c->url, describe(req).c_str());

    std::vector<Rule> allow{*rule};
    // literal paths: the table checks the matcher; refusing ambiguous paths (%2F, ';', …)
    // before matching is Engine policy, tested in test_ambiguity.cpp.
    const Engine engine(std::move(allow), {}, true);
    const auto d = engine.evaluate(*req);
    cr_expect(d.allowed == c->allowed, "[%s] %s %s: %s, expected %s", c->rule, c->method, c->url,
              d.allowed ? "allowed" : "denied", c->allowed ? "allowed" : "denied");
    if (c->allowed) {
        cr_expect(d.reason == Reason::AllowRule && d.rule_text() == c->rule,
                  "[%s] %s %s: reason/rule of an allowed request", c->rule, c->method, c->url);
    } else {
        cr_expect(d.reason == Reason::NoRuleMatched && d.rule == nullptr,
                  "[%s] %s %s: reason/rule of a denied request", c->rule, c->method, c->url);
    }

    const Rule& r = *rule;
    const bool by_parts = r.matches_host(req->host.text, req->host.kind) &&
                          r.matches_port(req->port) && r.matches_method(req->method) &&
                          r.matches_path(req->path);
    cr_expect(by_parts == c->allowed, "[%s] %s %s: Rule::matches_* say %s", c->rule, c->method,
              c->url, by_parts ? "match" : "no match");

    const std::vector<Rule> rules{*rule};
    const Rule* linear = linear_first_match(rules, RequestView::of(*req));
    cr_expect((linear != nullptr) == c->allowed, "[%s] %s %s: linear_first_match disagrees",
              c->rule, c->method, c->url);
}

Test(match, name_patterns_never_match_addresses) {
    // Whether these parse is the parser's business; if they do, they must not match an IPv4
    // address by its text.
    for (const char* text : {"domain=*.*.*.*", "domain=*.2.3.4", "domain=*.3.4", "domain=*.4"}) {
        auto rule = parse_rule(text);
        if (!rule.ok()) {
            cr_expect(!rule.error().what().empty(), "%s: empty error message", text);
            continue;
        }
        const Engine engine({*rule}, {}, true);  // literal paths, as above
        auto req = parse_request("GET", "http://1.2.3.4/");
        cr_assert(req.ok());
        cr_expect(!engine.evaluate(*req).allowed, "%s must not allow http://1.2.3.4/", text);
        cr_expect(!rule->matches_host("1.2.3.4", HostKind::IPv4), "%s matches_host(1.2.3.4)", text);
    }
    auto name = parse_rule("domain=example.com");
    cr_assert(name.ok());
    cr_expect(!name->matches_host("example.com", HostKind::IPv4),
              "a name pattern must not match a host of kind IPv4");
    cr_expect(!name->matches_host("example.com", HostKind::IPv6),
              "a name pattern must not match a host of kind IPv6");
    auto v4 = parse_rule("domain=1.2.3.4");
    cr_assert(v4.ok());
    cr_expect(!v4->matches_host("1.2.3.4", HostKind::Name),
              "an IPv4 pattern must not match a name spelled like it");
    cr_expect(v4->matches_host("1.2.3.4", HostKind::IPv4), "the IPv4 pattern matches its address");
}

Test(match, rule_methods_directly) {
    auto r = parse_rule("domain=*.example.com method=GET,HEAD path=/a/*,/b port=443,8443");
    cr_assert(r.ok(), "%s", describe(r).c_str());
    cr_expect(r->matches_host("x.example.com", HostKind::Name));
    cr_expect(!r->matches_host("example.com", HostKind::Name));
    cr_expect(r->matches_port(443));
    cr_expect(r->matches_port(8443));
    cr_expect(!r->matches_port(80));
    cr_expect(r->matches_method("GET"));
    cr_expect(r->matches_method("HEAD"));
    cr_expect(!r->matches_method("POST"));
    cr_expect(r->matches_path("/a/x"));
    cr_expect(r->matches_path("/b"));
    cr_expect(!r->matches_path("/b/"));
    cr_expect(!r->matches_path("/a"));

    auto any = parse_rule("domain=example.com");
    cr_assert(any.ok());
    cr_expect(any->matches_port(1) && any->matches_port(65535), "no port= means any port");
    cr_expect(any->matches_method("PROPFIND"), "no method= means any method");
    cr_expect(any->matches_path("/") && any->matches_path("/x/y/z"), "no path= means any path");
    cr_expect(!any->host || any->host->matches("www.example.com", HostKind::Name),
              "HostPattern::matches on a subdomain");
}
