// SPDX-License-Identifier: Apache-2.0
// policy::Engine: first-match attribution, deny rules, default deny, the CONNECT pre-check
// (may_allow), and a seeded property test that the indexed evaluation picks the same rule as
// a plain linear scan.
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "policy/rule.hpp"
#include "tests/unit/lj_test.hpp"

using lj::policy::canonical_host;
using lj::policy::Decision;
using lj::policy::Engine;
using lj::policy::HostKind;
using lj::policy::linear_first_match;
using lj::policy::parse_request;
using lj::policy::parse_rule;
using lj::policy::Reason;
using lj::policy::RequestView;
using lj::policy::Rule;
using lj::policy::to_string;
using lj::test::cr_str;
using lj::test::describe;

namespace {

std::vector<Rule> rules(std::initializer_list<const char*> texts, const char* origin = "test") {
    std::vector<Rule> out;
    for (const char* t : texts) {
        auto r = parse_rule(t, origin);
        cr_assert(r.ok(), "rule \"%s\": %s", t, describe(r).c_str());
        out.push_back(std::move(*r));
    }
    return out;
}

Decision decide(const Engine& e, const char* method, const char* url) {
    auto req = parse_request(method, url);
    cr_assert(req.ok(), "%s %s: %s", method, url, describe(req).c_str());
    return e.evaluate(*req);
}

}  // namespace

Test(engine, reason_strings) {
    cr_expect_eq(to_string(Reason::AllowRule), std::string_view("allow_rule_matched"));
    cr_expect_eq(to_string(Reason::DenyRule), std::string_view("deny_rule_matched"));
    cr_expect_eq(to_string(Reason::NoRuleMatched), std::string_view("no_rule_matched"));
}

Test(engine, no_rules_denies_everything) {
    const Engine empty;
    for (const char* url : {"https://example.com/", "http://127.0.0.1/", "http://[::1]:8080/x"}) {
        const auto d = decide(empty, "GET", url);
        cr_expect(!d.allowed, "%s must be denied by an empty engine", url);
        cr_expect(d.reason == Reason::NoRuleMatched && d.rule == nullptr && d.rule_text().empty(),
                  "%s: reason no_rule_matched and no rule", url);
    }
    cr_expect(!empty.may_allow("example.com", HostKind::Name, 443), "empty engine may_allow");
    const Engine also_empty({}, {});
    cr_expect(!decide(also_empty, "GET", "https://example.com/").allowed);
}

Test(engine, first_match_attribution) {
    struct Row {
        std::vector<const char*> allow;
        const char* method;
        const char* url;
        const char* expected_rule;  // nullptr: denied
    };
    const Row rows[] = {
        {{"domain=example.com", "domain=www.example.com"},
         "GET",
         "https://www.example.com/",
         "domain=example.com"},
        {{"domain=www.example.com", "domain=example.com"},
         "GET",
         "https://www.example.com/",
         "domain=www.example.com"},
        {{"domain=*", "domain=example.com"}, "GET", "https://example.com/", "domain=*"},
        {{"domain=example.com", "domain=*"}, "GET", "https://example.com/", "domain=example.com"},
        {{"domain=example.com", "domain=*"}, "GET", "https://other.org/", "domain=*"},
        {{"domain=example.com path=/a", "domain=example.com"},
         "GET",
         "https://example.com/b",
         "domain=example.com"},
        {{"domain=example.com path=/a", "domain=example.com"},
         "GET",
         "https://example.com/a",
         "domain=example.com path=/a"},
        {{"domain=*.example.com", "domain=x.example.com"},
         "GET",
         "https://x.example.com/",
         "domain=*.example.com"},
        {{"domain=x.example.com", "domain=*.example.com"},
         "GET",
         "https://x.example.com/",
         "domain=x.example.com"},
        {{"domain=* method=GET", "domain=a.com"}, "GET", "https://a.com/", "domain=* method=GET"},
        {{"domain=* method=GET", "domain=a.com"}, "POST", "https://a.com/", "domain=a.com"},
        {{"domain=a.*.com", "domain=a.b.com"}, "GET", "https://a.b.com/", "domain=a.*.com"},
        {{"domain=a.b.com", "domain=a.*.com"}, "GET", "https://a.b.com/", "domain=a.b.com"},
        {{"domain=b.com port=8080", "domain=a.b.com port=443", "domain=b.com"},
         "GET",
         "https://a.b.com/",
         "domain=a.b.com port=443"},
        {{"domain=1.2.3.4 port=81", "domain=*", "domain=1.2.3.4"},
         "GET",
         "http://1.2.3.4/",
         "domain=*"},
        {{"domain=[::1] port=81", "domain=[::1]"}, "GET", "http://[::1]/", "domain=[::1]"},
        {{"domain=a.com method=POST", "domain=b.com"}, "GET", "https://a.com/", nullptr},
    };
    for (const Row& row : rows) {
        std::vector<Rule> allow;
        for (const char* t : row.allow) {
            auto r = parse_rule(t, "test");
            cr_assert(r.ok(), "%s: %s", t, describe(r).c_str());
            allow.push_back(std::move(*r));
        }
        const Engine e(std::move(allow), {});
        const auto d = decide(e, row.method, row.url);
        if (row.expected_rule == nullptr) {
            cr_expect(!d.allowed && d.rule == nullptr, "%s %s: expected deny, got rule \"%.*s\"",
                      row.method, row.url, static_cast<int>(d.rule_text().size()),
                      d.rule_text().data());
            continue;
        }
        cr_expect(d.allowed && d.reason == Reason::AllowRule, "%s %s: expected allow", row.method,
                  row.url);
        cr_expect(d.rule_text() == row.expected_rule, "%s %s: rule \"%.*s\", expected \"%s\"",
                  row.method, row.url, static_cast<int>(d.rule_text().size()), d.rule_text().data(),
                  row.expected_rule);
        cr_expect(d.rule == nullptr || d.rule->origin == "test", "origin of the deciding rule");
    }
}

Test(engine, deny_overrides_allow) {
    const Engine e(rules({"domain=example.com"}),
                   rules({"domain=admin.example.com", "domain=example.com method=DELETE"}, "deny"));
    const auto admin = decide(e, "GET", "https://admin.example.com/");
    cr_expect(!admin.allowed, "admin.example.com must be denied");
    cr_expect(admin.reason == Reason::DenyRule, "reason %s",
              std::string(to_string(admin.reason)).c_str());
    cr_expect(admin.rule_text() == "domain=admin.example.com", "rule \"%.*s\"",
              static_cast<int>(admin.rule_text().size()), admin.rule_text().data());
    cr_expect(admin.rule != nullptr && admin.rule->origin == "deny", "the deny rule's origin");

    const auto spelled = decide(e, "GET", "https://ADMIN.Example.com./");
    cr_expect(!spelled.allowed && spelled.reason == Reason::DenyRule,
              "deny rules see the canonical host (case, trailing dot)");
    const auto deep = decide(e, "GET", "https://x.admin.example.com/");
    cr_expect(!deep.allowed && deep.reason == Reason::DenyRule, "subdomains of a deny rule");

    const auto www = decide(e, "GET", "https://www.example.com/");
    cr_expect(www.allowed && www.reason == Reason::AllowRule, "www.example.com must be allowed");
    cr_expect(www.rule_text() == "domain=example.com", "the allow rule is named");

    const auto del = decide(e, "DELETE", "https://www.example.com/x");
    cr_expect(!del.allowed && del.reason == Reason::DenyRule, "DELETE is denied");
    cr_expect(del.rule_text() == "domain=example.com method=DELETE", "the deny rule is named");
    const auto post = decide(e, "POST", "https://www.example.com/x");
    cr_expect(post.allowed, "a method-restricted deny rule blocks only that method");

    // A deny rule alone allows nothing: no allow rule matched, so the reason is no_rule_matched.
    const auto other = decide(e, "GET", "https://other.org/");
    cr_expect(!other.allowed && other.reason == Reason::NoRuleMatched && other.rule == nullptr,
              "no allow rule matched");
    const Engine deny_only({}, rules({"domain=a.com"}));
    const auto a = decide(deny_only, "GET", "https://a.com/");
    cr_expect(!a.allowed && a.reason == Reason::NoRuleMatched, "deny-only engine");
}

Test(engine, first_deny_rule_is_named) {
    const Engine e(rules({"domain=*"}),
                   rules({"domain=b.com", "domain=a.b.com", "domain=* method=PUT"}));
    const auto d = decide(e, "PUT", "https://a.b.com/");
    cr_expect(!d.allowed && d.rule_text() == "domain=b.com", "first deny rule, got \"%.*s\"",
              static_cast<int>(d.rule_text().size()), d.rule_text().data());
    const auto put = decide(e, "PUT", "https://c.com/");
    cr_expect(!put.allowed && put.rule_text() == "domain=* method=PUT", "deny rule for every host");
    cr_expect(decide(e, "GET", "https://c.com/").allowed, "GET c.com allowed");
}

Test(engine, survives_move) {
    Engine a(rules({"domain=example.com"}), rules({"domain=bad.example.com"}));
    Engine b(std::move(a));
    const auto d = decide(b, "GET", "https://example.com/");
    cr_expect(d.allowed && d.rule_text() == "domain=example.com", "moved engine evaluates");
    cr_expect(d.rule == &b.allow_rules()[0], "Decision::rule points into the engine");
    Engine c;
    c = std::move(b);
    cr_expect(!decide(c, "GET", "https://bad.example.com/").allowed, "move-assigned engine");
}

// ---- may_allow (CONNECT pre-check) --------------------------------------------------------

namespace {

struct MayRow {
    const char* host;
    unsigned port;
    bool expected;
};

struct MayCase {
    char* host;
    unsigned port;
    bool expected;
};

const MayRow kMayRows[] = {
    {"github.com", 443, true},          // allow restricted by method and path
    {"api.github.com", 443, true},      // subdomain
    {"GitHub.com.", 443, true},         // canonicalized first
    {"evil.github.com", 443, false},    // unrestricted deny
    {"a.evil.github.com", 443, false},  // subdomain of the deny rule
    {"example.com", 443, true},         // port=443
    {"example.com", 80, false},         // wrong port for the only rule
    {"x.example.com", 443, true},       // deny restricted to DELETE
    {"y.example.com", 443, true},       // deny restricted to a path
    {"z.example.com", 443, false},      // deny with only a port: covers 443
    {"notgithub.com", 443, false},      // no rule
    {"1.2.3.4", 443, false},            // no rule
    {"10.0.0.1", 8080, true},           // IPv4 rule
    {"10.0.0.1", 8081, false},          // its port only
    {"[::1]", 80, true},                // IPv6 rule, any port
    {"[::2]", 80, false},               // another address
    {"internal.corp", 443, false},      // deny-only host
};

}  // namespace

ParameterizedTestParameters(engine, may_allow) {
    static criterion::parameters<MayCase> params;
    if (params.empty()) {
        for (const MayRow& r : kMayRows) {
            params.push_back(MayCase{cr_str(r.host), r.port, r.expected});
        }
    }
    return params;
}

ParameterizedTest(MayCase* c, engine, may_allow) {
    const Engine e(rules({"domain=github.com method=GET path=/api/*", "domain=example.com port=443",
                          "domain=10.0.0.1 port=8080", "domain=[::1]"}),
                   rules({"domain=evil.github.com", "domain=x.example.com method=DELETE",
                          "domain=y.example.com path=/admin", "domain=z.example.com port=443",
                          "domain=internal.corp"}));
    auto host = canonical_host(c->host);
    cr_assert(host.ok(), "%s: %s", c->host, describe(host).c_str());
    const bool got = e.may_allow(host->text, host->kind, static_cast<std::uint16_t>(c->port));
    cr_expect(got == c->expected, "may_allow(%s, %u) = %d, expected %d", c->host, c->port,
              got ? 1 : 0, c->expected ? 1 : 0);
}

// ---- index vs linear scan -----------------------------------------------------------------

namespace {

/// Deterministic across platforms: only the raw mt19937 sequence is used.
class Gen {
  public:
    explicit Gen(std::uint32_t seed) : rng_(seed) {}
    std::size_t below(std::size_t n) { return rng_() % n; }
    bool chance(std::size_t percent) { return below(100) < percent; }
    template <class T, std::size_t N>
    const T& pick(const T (&arr)[N]) {
        return arr[below(N)];
    }

  private:
    std::mt19937 rng_;
};

const char* const kLabels[] = {"a", "b", "c", "api", "www", "x"};
const char* const kTlds[] = {"com", "org", "io"};
const char* const kReqTlds[] = {"com", "org", "io", "net"};  // no rule names .net
const char* const kMethods[] = {"GET", "POST", "HEAD", "DELETE"};
const char* const kRulePaths[] = {"/api/*", "/v1/users", "/", "/a/*/c", "/*", "/a/*"};
const char* const kReqPaths[] = {"/", "/api/x", "/api", "/v1/users", "/a/b/c", "/a/b/c/d", "/x"};
const unsigned kPorts[] = {80, 443, 8080};

template <std::size_t N>
std::string name(Gen& g, const char* const (&tlds)[N], std::size_t labels) {
    std::string out = g.pick(tlds);
    for (std::size_t i = 1; i < labels; ++i) {
        out = std::string(g.pick(kLabels)) + "." + out;
    }
    return out;
}

std::string domain_pattern(Gen& g) {
    switch (g.below(16)) {
        case 0:
            return "*";
        case 1:
        case 2:
            return "*." + name(g, kTlds, 1 + g.below(2));
        case 3:
        case 4:
            return std::string(g.pick(kLabels)) + ".*." + name(g, kTlds, 1 + g.below(2));
        case 5:
            return "10.0.0." + std::to_string(g.below(3));
        case 6:
            return "[::" + std::to_string(1 + g.below(2)) + "]";
        default:
            return name(g, kTlds, 2 + g.below(2));
    }
}

template <class T, std::size_t N>
std::string list(Gen& g, const T (&items)[N]) {
    std::string out;
    const std::size_t n = 1 + g.below(2);
    for (std::size_t i = 0; i < n; ++i) {
        std::string item;
        if constexpr (std::is_same_v<T, unsigned>) {
            item = std::to_string(g.pick(items));
        } else {
            item = g.pick(items);
        }
        if (("," + out + ",").find("," + item + ",") == std::string::npos) {
            out += (out.empty() ? "" : ",") + item;
        }
    }
    return out;
}

/// A mix of every pattern kind. Rules that match every host (bare `*`) are always
/// restricted to one path, so that plenty of requests stay denied.
std::string random_rule(Gen& g) {
    std::string text;
    const std::string domain = domain_pattern(g);
    const bool every_host = domain == "*";
    text = "domain=" + domain;
    if (g.chance(30)) {
        text += " method=" + list(g, kMethods);
    }
    if (every_host) {
        text += " path=/v1/users";
    } else if (g.chance(30)) {
        text += " path=" + list(g, kRulePaths);
    }
    if (g.chance(25)) {
        text += " port=" + list(g, kPorts);
    }
    return text;
}

std::string random_url(Gen& g) {
    std::string host;
    switch (g.below(6)) {
        case 0:
            host = "10.0.0." + std::to_string(g.below(5));
            break;
        case 1:
            host = "[::" + std::to_string(1 + g.below(3)) + "]";
            break;
        default:
            host = name(g, kReqTlds, 1 + g.below(4));
    }
    const unsigned port = g.pick(kPorts);
    return "http://" + host + ":" + std::to_string(port) + g.pick(kReqPaths);
}

void check_equivalence(std::uint32_t seed, std::size_t n_rules, std::size_t n_requests,
                       std::size_t n_deny) {
    Gen g(seed);
    std::vector<Rule> allow;
    std::vector<Rule> deny;
    for (std::size_t i = 0; i < n_rules + n_deny; ++i) {
        const std::string text = random_rule(g);
        auto r = parse_rule(text, "gen");
        cr_assert(r.ok(), "generated rule \"%s\": %s", text.c_str(), describe(r).c_str());
        (i < n_rules ? allow : deny).push_back(std::move(*r));
    }
    const Engine engine(std::move(allow), std::move(deny));
    std::size_t allowed = 0;
    for (std::size_t i = 0; i < n_requests; ++i) {
        const std::string url = random_url(g);
        const char* method = g.pick(kMethods);
        auto req = parse_request(method, url);
        cr_assert(req.ok(), "generated request %s %s: %s", method, url.c_str(),
                  describe(req).c_str());
        const RequestView view = RequestView::of(*req);
        const Decision d = engine.evaluate(view);
        const Rule* a = linear_first_match(engine.allow_rules(), view);
        const Rule* x = linear_first_match(engine.deny_rules(), view);
        if (a == nullptr) {
            cr_assert(!d.allowed && d.rule == nullptr && d.reason == Reason::NoRuleMatched,
                      "seed %u: %s %s: no allow rule matches linearly but the engine said %s "
                      "by \"%.*s\"",
                      seed, method, url.c_str(), d.allowed ? "allow" : "deny",
                      static_cast<int>(d.rule_text().size()), d.rule_text().data());
        } else if (x == nullptr) {
            cr_assert(d.allowed && d.rule == a,
                      "seed %u: %s %s: linear first match \"%s\" (#%td), engine \"%.*s\"", seed,
                      method, url.c_str(), a->text.c_str(), a - engine.allow_rules().data(),
                      static_cast<int>(d.rule_text().size()), d.rule_text().data());
            cr_assert(d.rule == nullptr || d.rule->text == a->text);
            ++allowed;
        } else {
            cr_assert(!d.allowed && d.reason == Reason::DenyRule && d.rule == x,
                      "seed %u: %s %s: linear first deny \"%s\", engine \"%.*s\"", seed, method,
                      url.c_str(), x->text.c_str(), static_cast<int>(d.rule_text().size()),
                      d.rule_text().data());
        }
    }
    // The generator must exercise both outcomes, or the comparison proves little.
    cr_expect(allowed > n_requests / 20 && allowed < n_requests - n_requests / 20,
              "seed %u: %zu of %zu requests allowed", seed, allowed, n_requests);
}

}  // namespace

Test(engine, index_matches_linear_scan) {
    check_equivalence(20240601U, 300, 5000, 0);
    check_equivalence(7U, 50, 3000, 0);
    check_equivalence(99U, 800, 3000, 0);
}

Test(engine, index_matches_linear_scan_with_deny_rules) {
    check_equivalence(424242U, 300, 5000, 20);
}
