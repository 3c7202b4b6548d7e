// SPDX-License-Identifier: Apache-2.0
// Paths whose meaning depends on the origin's decoder (path_ambiguity) and the engine's
// refusal of them when rules constrain paths; the upgrade= rule key. One case per table line.
#include <string>
#include <vector>

#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "policy/rule.hpp"
#include "tests/unit/lj_test.hpp"

using lj::policy::Decision;
using lj::policy::Engine;
using lj::policy::parse_request;
using lj::policy::parse_rule;
using lj::policy::path_ambiguity;
using lj::policy::Reason;
using lj::policy::Rule;

namespace {

struct AmbiguityRow {
    const char* path;
    const char* needle;  ///< a word of the reason; nullptr: unambiguous
};

const AmbiguityRow kRows[] = {
    // encoded separators: one segment to us, two to a decoding origin
    {"/public/..%2Fadmin", "'/'"},
    {"/public/..%2fadmin", "'/'"},
    {"/public/secret%2Fkey", "'/'"},
    {"/public/..%5Cadmin", "'\\'"},
    {"/public/..%5cadmin", "'\\'"},
    // ';' parameters: Tomcat/Spring drop them
    {"/public/..;/admin", "';'"},
    {"/public/.;/admin", "';'"},
    {"/public/secret;x/key", "';'"},
    {"/a;", "';'"},
    // double encoding of anything
    {"/public/%252e%252e/admin", "double"},
    {"/public/%252F", "double"},
    {"/public/%255c", "double"},
    {"/public/%2525", "double"},
    {"/public/%2573ecret", "double"},
    // overlong, invalid and truncated UTF-8 in escapes
    {"/public/%C0%AE%C0%AE/admin", "UTF-8"},
    {"/public/%c1%9c", "UTF-8"},
    {"/public/%E0%80%AE", "overlong"},
    {"/public/%F0%80%80%AE", "overlong"},
    {"/public/%ED%A0%80", "overlong"},
    {"/public/%F4%90%80%80", "overlong"},
    {"/public/%F5%80%80%80", "UTF-8"},
    {"/public/%FF", "UTF-8"},
    {"/public/%80", "UTF-8"},
    {"/public/%E2%82", "truncated"},
    {"/public/%E2%82x", "truncated"},
    {"/public/%E2x%82", "truncated"},
    {"/public/%C3%28", "overlong"},
    // empty segments
    {"/public//admin", "'//'"},
    {"//public", "'//'"},
    // unambiguous
    {"/", nullptr},
    {"/public/ok", nullptr},
    {"/public/a%20b", nullptr},
    {"/public/%2e%2e/x", nullptr},  // decoded by us as by everyone
    {"/public/100%25", nullptr},
    {"/public/100%25done", nullptr},
    {"/public/%25zz", nullptr},
    {"/public/%E2%82%AC", nullptr},
    {"/public/%F0%9F%98%80", nullptr},
    {"/public/%C3%A9t%C3%A9", nullptr},
    {"/public/", nullptr},
    {"/public/..", nullptr},
    {"/a:b@c!$&'()*+,=", nullptr},
};

struct AmbiguityCase {
    char* path;
    char* needle;
};

}  // namespace

ParameterizedTestParameters(ambiguity, table) {
    static criterion::parameters<AmbiguityCase> params;
    for (const AmbiguityRow& row : kRows) {
        params.push_back({lj::test::cr_str(row.path), lj::test::cr_str(row.needle)});
    }
    return params;
}

ParameterizedTest(AmbiguityCase* c, ambiguity, table) {
    const std::string why = path_ambiguity(c->path);
    if (c->needle == nullptr) {
        cr_expect(why.empty(), "path_ambiguity(\"%s\") = \"%s\", want unambiguous", c->path,
                  why.c_str());
    } else {
        cr_expect(why.find(c->needle) != std::string::npos,
                  "path_ambiguity(\"%s\") = \"%s\", want a reason with \"%s\"", c->path,
                  why.c_str(), c->needle);
    }
}

namespace {

std::vector<Rule> rules(std::initializer_list<const char*> texts) {
    std::vector<Rule> out;
    for (const char* t : texts) {
        auto r = parse_rule(t, "test");
        cr_assert(r.ok(), "parse_rule(%s): %s", t, r.ok() ? "" : r.error().message.c_str());
        out.push_back(std::move(*r));
    }
    return out;
}

Decision decide(const Engine& e, const char* url, const char* upgrade = "") {
    auto req = parse_request("GET", url);
    cr_assert(req.ok(), "parse_request(%s)", url);
    req->upgrade = upgrade;
    return e.evaluate(*req);
}

}  // namespace

Test(ambiguity, refused_when_rules_constrain_paths) {
    const Engine e(rules({"domain=x.test path=/public/*"}), rules({}));
    cr_expect(e.constrains_paths());
    const Decision d = decide(e, "http://x.test/public/..%2Fadmin");
    cr_expect(!d.allowed && d.reason == Reason::AmbiguousPath);
    cr_expect(decide(e, "http://x.test/public/ok").allowed);
}

Test(ambiguity, deny_rule_paths_count_too) {
    const Engine e(rules({"domain=x.test"}), rules({"domain=x.test path=/secret/*"}));
    cr_expect(decide(e, "http://x.test/secret;x/key").reason == Reason::AmbiguousPath);
    cr_expect(decide(e, "http://x.test/other").allowed);
}

Test(ambiguity, ignored_without_path_rules) {
    const Engine e(rules({"domain=x.test"}), rules({}));
    cr_expect(!e.constrains_paths());
    cr_expect(decide(e, "http://x.test/a%2Fb").allowed);
}

Test(ambiguity, literal_paths_match_as_written) {
    const Engine e(rules({"domain=x.test path=/public/*"}), rules({"domain=x.test path=/p/s/*"}),
                   true);
    cr_expect(decide(e, "http://x.test/public/..%2Fadmin").allowed);
    cr_expect(decide(e, "http://x.test/p/s%2Fk").reason == Reason::NoRuleMatched);
}

Test(upgrade, parse) {
    auto r = parse_rule("domain=x.test upgrade=None,WebSocket,websocket", "t");
    cr_assert(r.ok());
    cr_expect(r->upgrades == (std::vector<std::string>{"none", "websocket"}));
    auto any = parse_rule("domain=x.test upgrade=websocket,*", "t");
    cr_assert(any.ok() && any->upgrades.empty());
    cr_expect(!parse_rule("domain=x.test upgrade=", "t").ok());
    cr_expect(!parse_rule("domain=x.test upgrade=a/b", "t").ok());
    cr_expect(!parse_rule("domain=x.test upgrade=none upgrade=websocket", "t").ok());
    auto typo = parse_rule("domain=x.test upgrades=none", "t");
    cr_assert(!typo.ok());
    cr_expect(typo.error().message.find("upgrade=") != std::string::npos, "%s",
              typo.error().message.c_str());
}

Test(upgrade, allow_path_without_upgrade) {
    const Engine e(rules({"domain=x.test path=/ws upgrade=none"}), rules({}));
    cr_expect(decide(e, "http://x.test/ws").allowed);
    cr_expect(decide(e, "http://x.test/ws", "websocket").reason == Reason::NoRuleMatched);
}

Test(upgrade, absent_key_allows_any) {
    const Engine e(rules({"domain=x.test"}), rules({}));
    cr_expect(decide(e, "http://x.test/ws", "websocket").allowed);
    cr_expect(decide(e, "http://x.test/ws").allowed);
}

Test(upgrade, only_websocket) {
    const Engine e(rules({"domain=x.test upgrade=websocket"}), rules({}));
    cr_expect(decide(e, "http://x.test/ws", "websocket").allowed);
    cr_expect(!decide(e, "http://x.test/ws").allowed);
}

Test(upgrade, deny_rule_for_upgrades_leaves_connect_open) {
    const Engine e(rules({"domain=x.test"}), rules({"domain=x.test upgrade=websocket"}));
    const Decision d = decide(e, "http://x.test/ws", "websocket");
    cr_expect(!d.allowed && d.reason == Reason::DenyRule);
    cr_expect(decide(e, "http://x.test/ws").allowed);
    // A deny rule that only covers upgrades does not refuse the whole host at CONNECT.
    cr_expect(e.decide_connect("x.test", lj::policy::HostKind::Name, 443).allowed);
}
