// SPDX-License-Identifier: Apache-2.0
// build_settings, rules: accumulation order (file, LANDJAIL_ALLOW, BOUNDARY_ALLOW, --allow),
// profile rules, an empty allow, bad rules naming their source and text, and no rules
// denying everything.
#include "tests/unit/settings_support.hpp"

using namespace lj::test::settings_support;

Test(settings, allow_rules_accumulate_in_order) {
    Inputs in;
    in.file = file("allowlist:\n  - domain=f1.com\n  - domain=f2.com\n");
    in.env["LANDJAIL_ALLOW"] = "domain=e1.com\n\n# a comment\n   \n  domain=e2.com method=GET  \n";
    in.env["BOUNDARY_ALLOW"] = "domain=b1.com";
    in.flags.allow = {"domain=c1.com", "domain=c2.com"};
    const Settings s = build(in);
    cr_assert(s.engine != nullptr);
    const auto& rules = s.engine->allow_rules();
    const char* texts[] = {
        "domain=f1.com", "domain=f2.com", "domain=e1.com", "domain=e2.com method=GET",
        "domain=b1.com", "domain=c1.com", "domain=c2.com"};
    const char* origins[] = {"bad.yaml:2:5",   "bad.yaml:3:5", "LANDJAIL_ALLOW", "LANDJAIL_ALLOW",
                             "BOUNDARY_ALLOW", "--allow",      "--allow"};
    cr_assert_eq(rules.size(), std::size(texts), "%zu rules", rules.size());
    for (std::size_t i = 0; i < rules.size(); ++i) {
        cr_expect(rules[i].text == texts[i], "rule %zu: \"%s\", expected \"%s\"", i,
                  rules[i].text.c_str(), texts[i]);
        cr_expect(rules[i].origin.rfind(origins[i], 0) == 0,
                  "rule %zu origin \"%s\", expected it to start with \"%s\"", i,
                  rules[i].origin.c_str(), origins[i]);
    }
    cr_expect(rules[2].origin != rules[3].origin,
              "LANDJAIL_ALLOW origins should tell the lines apart: \"%s\"",
              rules[3].origin.c_str());
    cr_expect(allows(s, "GET", "https://e2.com/") && !allows(s, "POST", "https://e2.com/"),
              "LANDJAIL_ALLOW rule with method=GET");
    cr_expect(allows(s, "GET", "https://c2.com/") && !allows(s, "GET", "https://other.com/"),
              "the engine uses all rules and nothing else");
}

Test(settings, deny_rules_accumulate_in_order) {
    Inputs in;
    in.file = file("allowlist:\n  - domain=*\ndenylist:\n  - domain=f.com\n");
    in.env["LANDJAIL_DENY"] = "domain=e.com\n# skip\n\ndomain=e2.com\n";
    in.flags.deny = {"domain=c.com"};
    const Settings s = build(in);
    cr_assert(s.engine != nullptr);
    const auto& rules = s.engine->deny_rules();
    const char* texts[] = {"domain=f.com", "domain=e.com", "domain=e2.com", "domain=c.com"};
    const char* origins[] = {"bad.yaml:4:5", "LANDJAIL_DENY", "LANDJAIL_DENY", "--deny"};
    cr_assert_eq(rules.size(), std::size(texts), "%zu deny rules", rules.size());
    for (std::size_t i = 0; i < rules.size(); ++i) {
        cr_expect(rules[i].text == texts[i] && rules[i].origin.rfind(origins[i], 0) == 0,
                  "deny rule %zu: \"%s\" from \"%s\"", i, rules[i].text.c_str(),
                  rules[i].origin.c_str());
    }
    cr_expect(!allows(s, "GET", "https://x.c.com/"), "--deny rule applies");
    cr_expect(!allows(s, "GET", "https://e2.com/"), "LANDJAIL_DENY rule applies");
    cr_expect(allows(s, "GET", "https://ok.org/"), "domain=* allows the rest");
}

Test(settings, profile_rules_follow_the_file) {
    Inputs in;
    in.file = file("allowlist:\n  - domain=file.com\n");
    in.profiles.push_back(file("allowlist:\n  - domain=profile.com\n", "github.yaml"));
    in.flags.allow = {"domain=flag.com"};
    const Settings s = build(in);
    cr_assert(s.engine != nullptr);
    const auto& rules = s.engine->allow_rules();
    cr_assert_eq(rules.size(), 3U);
    cr_expect(rules[0].text == "domain=file.com" && rules[1].text == "domain=profile.com" &&
                  rules[2].text == "domain=flag.com",
              "order file, profile, --allow: %s, %s, %s", rules[0].text.c_str(),
              rules[1].text.c_str(), rules[2].text.c_str());
    cr_expect(rules[1].origin.find("github.yaml") != std::string::npos, "profile origin \"%s\"",
              rules[1].origin.c_str());
}

Test(settings, empty_allow_is_an_error) {
    for (const char* bad : {"", "   ", "\t"}) {
        Inputs in;
        in.flags.allow = {"domain=a.com", bad};
        const std::string what = build_error(in);
        cr_expect(what.find("--allow") != std::string::npos && contains_any(what, "empty"),
                  "--allow \"%s\": error \"%s\" should name --allow and say it is empty", bad,
                  what.c_str());
    }
    Inputs deny;
    deny.flags.deny = {""};
    const std::string what = build_error(deny);
    cr_expect(what.find("--deny") != std::string::npos, "--deny \"\": %s", what.c_str());
}

Test(settings, bad_rules_name_their_source) {
    struct Row {
        const char* env_name;
        const char* env_value;
        const char* flag_allow;
        const char* needle1;
        const char* needle2;
    };
    const Row rows[] = {
        {"LANDJAIL_ALLOW", "domain=a.com\nhost=x\n", nullptr, "LANDJAIL_ALLOW", "host=x"},
        {"BOUNDARY_ALLOW", "github.com", nullptr, "BOUNDARY_ALLOW", "github.com"},
        {"LANDJAIL_DENY", "domain=github.com:443", nullptr, "LANDJAIL_DENY",
         "domain=github.com:443"},
        {nullptr, nullptr, "domain=", "--allow", "domain="},
        {nullptr, nullptr, "domain=https://x.com", "--allow", "domain=https://x.com"},
    };
    for (const Row& row : rows) {
        Inputs in;
        if (row.env_name != nullptr) {
            in.env[row.env_name] = row.env_value;
        }
        if (row.flag_allow != nullptr) {
            in.flags.allow = {row.flag_allow};
        }
        const std::string what = build_error(in);
        cr_expect(what.find(row.needle1) != std::string::npos &&
                      what.find(row.needle2) != std::string::npos,
                  "error \"%s\" should name %s and quote %s", what.c_str(), row.needle1,
                  row.needle2);
    }
    // An allowlist rule inside a FileConfig built by hand (not through parse_config) is still
    // validated and located.
    FileConfig fc;
    fc.file = "hand.yaml";
    fc.allowlist.push_back(RuleSource{"domain=ok.com", "hand.yaml:2:5"});
    fc.allowlist.push_back(RuleSource{"domain=git*.com", "hand.yaml:3:5"});
    Inputs in;
    in.file = fc;
    const std::string what = build_error(in);
    cr_expect(what.find("hand.yaml:3:5") != std::string::npos &&
                  what.find("domain=git*.com") != std::string::npos,
              "error \"%s\" should be located and quote the rule", what.c_str());
}

Test(settings, parse_rules_names_origin_and_text) {
    auto ok = parse_rules({{"domain=a.com", "x.yaml:1:3"}, {"domain=b.com", "--allow"}});
    cr_assert(ok.ok(), "%s", describe(ok).c_str());
    cr_assert_eq(ok->size(), 2U);
    cr_expect((*ok)[0].origin == "x.yaml:1:3" && (*ok)[1].origin == "--allow", "origins kept");
    auto bad = parse_rules({{"domain=a.com", "x.yaml:1:3"}, {"path=/a/../b", "x.yaml:2:3"}});
    cr_assert(!bad.ok(), "a bad rule must fail");
    const std::string what = bad.error().what();
    cr_expect(what.find("x.yaml:2:3") != std::string::npos &&
                  what.find("path=/a/../b") != std::string::npos,
              "error \"%s\" should name the origin and quote the rule", what.c_str());
}

Test(settings, no_rules_denies_everything) {
    const Settings s = build(Inputs{});
    cr_assert(s.engine != nullptr, "an engine is always built");
    cr_expect(s.engine->allow_rules().empty() && s.engine->deny_rules().empty(), "no rules");
    for (const char* url : {"https://example.com/", "http://127.0.0.1:8080/", "http://[::1]/"}) {
        auto req = parse_request("GET", url);
        cr_assert(req.ok());
        const auto d = s.engine->evaluate(*req);
        cr_expect(!d.allowed && d.reason == Reason::NoRuleMatched, "%s must be denied", url);
    }
    cr_expect(!s.engine->may_allow("example.com", lj::policy::HostKind::Name, 443),
              "CONNECT refused with no rules");
}
