// SPDX-License-Identifier: Apache-2.0
// build_settings: precedence flag > environment > file > default with the origin of every
// value, rule accumulation order (file, LANDJAIL_ALLOW, BOUNDARY_ALLOW, --allow), and errors
// that name the variable or flag they come from.
#include <string>
#include <utility>
#include <vector>

#include "policy/config.hpp"
#include "policy/request.hpp"
#include "policy/settings.hpp"
#include "tests/unit/lj_test.hpp"

using lj::policy::build_settings;
using lj::policy::FileConfig;
using lj::policy::Inputs;
using lj::policy::parse_config;
using lj::policy::parse_request;
using lj::policy::parse_rules;
using lj::policy::Reason;
using lj::policy::RuleSource;
using lj::policy::Settings;
using lj::test::contains_any;
using lj::test::describe;

namespace {

FileConfig file(const char* text, const char* name = "bad.yaml") {
    auto r = parse_config(text, name);
    cr_assert(r.ok(), "config: %s", describe(r).c_str());
    return std::move(*r);
}

Settings build(const Inputs& in) {
    auto r = build_settings(in);
    cr_assert(r.ok(), "build_settings: %s", describe(r).c_str());
    return std::move(*r);
}

std::string build_error(const Inputs& in) {
    auto r = build_settings(in);
    cr_assert(!r.ok(), "build_settings should fail");
    return r.error().what();
}

bool allows(const Settings& s, const char* method, const char* url) {
    auto req = parse_request(method, url);
    cr_assert(req.ok(), "%s %s: %s", method, url, describe(req).c_str());
    cr_assert(s.engine != nullptr, "Settings::engine must be set");
    return s.engine->evaluate(*req).allowed;
}

/// One precedence case: which sources are present, and the expected value and origin.
struct PrecedenceRow {
    const char* yaml;      // nullptr: no config file
    const char* env_name;  // nullptr: no environment variable
    const char* env_value;
    const char* flag;  // nullptr: flag not given
    const char* value;
    const char* origin;
};

}  // namespace

Test(settings, log_level_precedence) {
    const PrecedenceRow rows[] = {
        {nullptr, nullptr, nullptr, nullptr, "warn", "default"},
        {"log_level: info\n", nullptr, nullptr, nullptr, "info", "bad.yaml:1:12"},
        {"log_level: info\n", "LANDJAIL_LOG_LEVEL", "debug", nullptr, "debug",
         "LANDJAIL_LOG_LEVEL"},
        {"log_level: info\n", "BOUNDARY_LOG_LEVEL", "error", nullptr, "error",
         "BOUNDARY_LOG_LEVEL"},
        {nullptr, "LANDJAIL_LOG_LEVEL", "debug", nullptr, "debug", "LANDJAIL_LOG_LEVEL"},
        {"log_level: info\n", "LANDJAIL_LOG_LEVEL", "debug", "error", "error", "--log-level"},
        {nullptr, nullptr, nullptr, "debug", "debug", "--log-level"},
        {"log_level: info\n", nullptr, nullptr, "warn", "warn", "--log-level"},
    };
    for (const auto& row : rows) {
        Inputs in;
        if (row.yaml != nullptr) {
            in.file = file(row.yaml);
        }
        if (row.env_name != nullptr) {
            in.env[row.env_name] = row.env_value;
        }
        if (row.flag != nullptr) {
            in.flags.log_level = row.flag;
        }
        const Settings s = build(in);
        cr_expect(s.log_level.value == row.value && s.log_level.origin == row.origin,
                  "log_level (file %s, env %s, flag %s): \"%s\" from %s, expected \"%s\" from %s",
                  row.yaml ? "yes" : "no", row.env_name ? row.env_name : "-",
                  row.flag ? row.flag : "-", s.log_level.value.c_str(), s.log_level.origin.c_str(),
                  row.value, row.origin);
    }
    // LANDJAIL_ wins over BOUNDARY_ when both are set.
    Inputs both;
    both.env["LANDJAIL_LOG_LEVEL"] = "debug";
    both.env["BOUNDARY_LOG_LEVEL"] = "error";
    const Settings s = build(both);
    cr_expect(s.log_level.value == "debug" && s.log_level.origin == "LANDJAIL_LOG_LEVEL",
              "LANDJAIL_LOG_LEVEL over BOUNDARY_LOG_LEVEL: %s from %s", s.log_level.value.c_str(),
              s.log_level.origin.c_str());
}

Test(settings, log_dir_precedence) {
    const PrecedenceRow rows[] = {
        {"log_dir: /f\n", nullptr, nullptr, nullptr, "/f", "bad.yaml:1:10"},
        {"log_dir: /f\n", "LANDJAIL_LOG_DIR", "/e", nullptr, "/e", "LANDJAIL_LOG_DIR"},
        {"log_dir: /f\n", "BOUNDARY_LOG_DIR", "/b", nullptr, "/b", "BOUNDARY_LOG_DIR"},
        {"log_dir: /f\n", "LANDJAIL_LOG_DIR", "/e", "/c", "/c", "--log-dir"},
        {nullptr, nullptr, nullptr, "/c", "/c", "--log-dir"},
    };
    for (const auto& row : rows) {
        Inputs in;
        if (row.yaml != nullptr) {
            in.file = file(row.yaml);
        }
        if (row.env_name != nullptr) {
            in.env[row.env_name] = row.env_value;
        }
        if (row.flag != nullptr) {
            in.flags.log_dir = row.flag;
        }
        const Settings s = build(in);
        cr_assert(s.log_dir.has_value(), "log_dir unset, expected %s", row.value);
        cr_expect(s.log_dir->value == row.value && s.log_dir->origin == row.origin,
                  "log_dir: \"%s\" from %s, expected \"%s\" from %s", s.log_dir->value.c_str(),
                  s.log_dir->origin.c_str(), row.value, row.origin);
    }
    const Settings none = build(Inputs{});
    cr_expect(!none.log_dir.has_value(), "log_dir has no default");
}

Test(settings, proxy_port_precedence) {
    const PrecedenceRow rows[] = {
        {nullptr, nullptr, nullptr, nullptr, "0", "default"},
        {"proxy_port: 8080\n", nullptr, nullptr, nullptr, "8080", "bad.yaml:1:13"},
        {"proxy_port: 8080\n", "PROXY_PORT", "9090", nullptr, "9090", "PROXY_PORT"},
        {"proxy_port: 8080\n", "LANDJAIL_PROXY_PORT", "9191", nullptr, "9191",
         "LANDJAIL_PROXY_PORT"},
        {"proxy_port: 8080\n", "PROXY_PORT", "9090", "7070", "7070", "--proxy-port"},
        {nullptr, nullptr, nullptr, "7070", "7070", "--proxy-port"},
    };
    for (const auto& row : rows) {
        Inputs in;
        if (row.yaml != nullptr) {
            in.file = file(row.yaml);
        }
        if (row.env_name != nullptr) {
            in.env[row.env_name] = row.env_value;
        }
        if (row.flag != nullptr) {
            in.flags.proxy_port = row.flag;
        }
        const Settings s = build(in);
        const std::string got = std::to_string(s.proxy_port.value);
        cr_expect(got == row.value && s.proxy_port.origin == row.origin,
                  "proxy_port: %s from %s, expected %s from %s", got.c_str(),
                  s.proxy_port.origin.c_str(), row.value, row.origin);
    }
    Inputs both;
    both.env["LANDJAIL_PROXY_PORT"] = "1111";
    both.env["PROXY_PORT"] = "2222";
    const Settings s = build(both);
    cr_expect(s.proxy_port.value == 1111 && s.proxy_port.origin == "LANDJAIL_PROXY_PORT",
              "LANDJAIL_PROXY_PORT over PROXY_PORT: %u from %s",
              static_cast<unsigned>(s.proxy_port.value), s.proxy_port.origin.c_str());
}

Test(settings, invalid_values_name_their_source) {
    struct Row {
        const char* env_name;
        const char* env_value;
        const char* flag_log_level;
        const char* flag_port;
        const char* needle1;
        const char* needle2;
    };
    const Row rows[] = {
        {"PROXY_PORT", "abc", nullptr, nullptr, "PROXY_PORT", "abc"},
        {"PROXY_PORT", "70000", nullptr, nullptr, "PROXY_PORT", "70000"},
        {"LANDJAIL_PROXY_PORT", "-5", nullptr, nullptr, "LANDJAIL_PROXY_PORT", "-5"},
        {"LANDJAIL_LOG_LEVEL", "loud", nullptr, nullptr, "LANDJAIL_LOG_LEVEL", "loud"},
        {"BOUNDARY_LOG_LEVEL", "trace", nullptr, nullptr, "BOUNDARY_LOG_LEVEL", "trace"},
        {nullptr, nullptr, "loud", nullptr, "--log-level", "loud"},
        {nullptr, nullptr, nullptr, "99999", "--proxy-port", "99999"},
        {nullptr, nullptr, nullptr, "http", "--proxy-port", "http"},
        {"DISABLE_AUDIT_LOGS", "maybe", nullptr, nullptr, "DISABLE_AUDIT_LOGS", "maybe"},
        {"BOUNDARY_JAIL_TYPE", "docker", nullptr, nullptr, "BOUNDARY_JAIL_TYPE", "docker"},
    };
    for (const Row& row : rows) {
        Inputs in;
        if (row.env_name != nullptr) {
            in.env[row.env_name] = row.env_value;
        }
        if (row.flag_log_level != nullptr) {
            in.flags.log_level = row.flag_log_level;
        }
        if (row.flag_port != nullptr) {
            in.flags.proxy_port = row.flag_port;
        }
        const std::string what = build_error(in);
        cr_expect(what.find(row.needle1) != std::string::npos &&
                      what.find(row.needle2) != std::string::npos,
                  "error \"%s\" should name %s and %s", what.c_str(), row.needle1, row.needle2);
    }
}

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

Test(settings, nsjail_warns) {
    Inputs in;
    in.file = file("jail_type: nsjail\n");
    const Settings s = build(in);
    bool warned = false;
    for (const auto& w : s.jail_warnings) {
        warned = warned || contains_any(w, "nsjail");
    }
    cr_expect(warned, "jail_type nsjail must add a warning that names nsjail (%zu warnings)",
              s.jail_warnings.size());
    cr_expect(s.warnings.empty(), "the nsjail warning is the jail's, not the proxy's");

    Inputs env;
    env.env["BOUNDARY_JAIL_TYPE"] = "nsjail";
    const Settings e = build(env);
    bool env_warned = false;
    for (const auto& w : e.jail_warnings) {
        env_warned = env_warned || contains_any(w, "nsjail");
    }
    cr_expect(env_warned, "BOUNDARY_JAIL_TYPE=nsjail must warn too");

    const Settings plain = build(Inputs{});
    for (const auto& w : plain.jail_warnings) {
        cr_expect(!contains_any(w, "nsjail"), "no nsjail warning by default: %s", w.c_str());
    }
    cr_expect_eq(plain.jail_type.value, std::string("landjail"));
}

// Newer boundary keys that would change what boundary does are each warned about, with
// their location; their defaults (empty, false) are silent.
// Newer boundary keys: upstream_proxy is warned about (no effect); the Coder agent's socket
// and session correlation act (issue 15), so they are not warned about.
Test(settings, newer_boundary_keys_warn) {
    Inputs in;
    in.env["CODER_AGENT_URL"] = "https://coder.example.com";
    in.file = file(
        "upstream_proxy: http://proxy.corp:3128\n"
        "log_proxy_socket_path: /run/coder/boundary.sock\n"
        "session_correlation_enabled: true\n");
    const Settings s = build(in);
    cr_assert_eq(s.warnings.size(), 1U, "one warning, got %zu", s.warnings.size());
    cr_expect(contains_any(s.warnings[0], "upstream_proxy (bad.yaml:1:17) is not supported"), "%s",
              s.warnings[0].c_str());
    cr_expect_eq(s.coder.socket->value, "/run/coder/boundary.sock");
    cr_expect(s.correlation.enabled.value && s.correlation.enabled.origin == "bad.yaml:3:30");

    Inputs defaults;
    defaults.file = file(
        "upstream_proxy: \"\"\nlog_proxy_socket_path: \"\"\n"
        "session_correlation_enabled: false\n");
    const Settings d = build(defaults);
    cr_expect(d.warnings.empty(), "boundary's defaults are silent");
    cr_expect_eq(d.coder.socket->origin, "default");
    cr_expect(!d.correlation.enabled.value);
}

Test(settings, audit_file_default) {
    struct Row {
        const char* yaml;
        const char* flag_log_dir;
        const char* flag_audit_log;
        const char* expected;  // nullptr: unset
    };
    const Row rows[] = {
        {nullptr, nullptr, nullptr, nullptr},
        {nullptr, "/tmp/x", nullptr, "/tmp/x/audit.jsonl"},
        {"log_dir: /var/log/lj\n", nullptr, nullptr, "/var/log/lj/audit.jsonl"},
        {"log_dir: /var/log/lj\n", "/tmp/x", nullptr, "/tmp/x/audit.jsonl"},
        {"log_dir: /var/log/lj\naudit:\n  file: /a/b.jsonl\n", nullptr, nullptr, "/a/b.jsonl"},
        {"log_dir: /var/log/lj\n", nullptr, "/c/d.jsonl", "/c/d.jsonl"},
        {"audit:\n  file: /a/b.jsonl\n", nullptr, "/c/d.jsonl", "/c/d.jsonl"},
    };
    for (const Row& row : rows) {
        Inputs in;
        if (row.yaml != nullptr) {
            in.file = file(row.yaml);
        }
        if (row.flag_log_dir != nullptr) {
            in.flags.log_dir = row.flag_log_dir;
        }
        if (row.flag_audit_log != nullptr) {
            in.flags.audit_log = row.flag_audit_log;
        }
        const Settings s = build(in);
        if (row.expected == nullptr) {
            cr_expect(!s.audit_file.has_value(), "no log_dir, no audit file: got \"%s\"",
                      s.audit_file ? s.audit_file->value.c_str() : "");
        } else {
            cr_expect(s.audit_file.has_value() && s.audit_file->value == row.expected,
                      "audit_file \"%s\", expected \"%s\"",
                      s.audit_file ? s.audit_file->value.c_str() : "(unset)", row.expected);
        }
    }
}

Test(settings, empty_paths_never_mean_the_root) {
    // An empty log_dir or audit file is a mistake: it must be refused (naming where it came
    // from) or ignored, never turned into "/audit.jsonl" or an audit file with no name.
    struct Row {
        const char* yaml;
        const char* flag_log_dir;
        const char* source;
    };
    const Row rows[] = {
        {"log_dir: \"\"\n", nullptr, "bad.yaml:1:10"},
        {nullptr, "", "--log-dir"},
        {"audit:\n  file: \"\"\n", nullptr, "bad.yaml:2:9"},
    };
    for (const Row& row : rows) {
        Inputs in;
        if (row.yaml != nullptr) {
            auto f = parse_config(row.yaml, "bad.yaml");
            if (!f.ok()) {
                cr_expect(f.error().what().find(row.source) != std::string::npos,
                          "%s: error \"%s\" should be located", row.source,
                          f.error().what().c_str());
                continue;
            }
            in.file = std::move(*f);
        }
        if (row.flag_log_dir != nullptr) {
            in.flags.log_dir = row.flag_log_dir;
        }
        auto r = build_settings(in);
        if (!r.ok()) {
            cr_expect(r.error().what().find(row.source) != std::string::npos,
                      "%s: error \"%s\" should name the source", row.source,
                      r.error().what().c_str());
            continue;
        }
        cr_expect(!r->audit_file ||
                      (r->audit_file->value != "/audit.jsonl" && !r->audit_file->value.empty()),
                  "empty %s: audit file \"%s\" (from %s)", row.source,
                  r->audit_file ? r->audit_file->value.c_str() : "",
                  r->audit_file ? r->audit_file->origin.c_str() : "");
        cr_expect(!r->log_dir || !r->log_dir->value.empty(), "empty %s: log_dir set to \"\"",
                  row.source);
    }
}

Test(settings, disable_audit_logs) {
    Inputs flag;
    flag.flags.disable_audit_logs = true;
    const Settings f = build(flag);
    cr_expect(f.disable_audit_logs.value && f.disable_audit_logs.origin == "--disable-audit-logs",
              "flag: %d from %s", f.disable_audit_logs.value ? 1 : 0,
              f.disable_audit_logs.origin.c_str());

    Inputs env;
    env.env["DISABLE_AUDIT_LOGS"] = "true";
    const Settings e = build(env);
    cr_expect(e.disable_audit_logs.value && e.disable_audit_logs.origin == "DISABLE_AUDIT_LOGS",
              "env: %d from %s", e.disable_audit_logs.value ? 1 : 0,
              e.disable_audit_logs.origin.c_str());

    Inputs in_file;
    in_file.file = file("disable_audit_logs: true\n");
    const Settings y = build(in_file);
    cr_expect(y.disable_audit_logs.value && y.disable_audit_logs.origin == "bad.yaml:1:21",
              "file: %d from %s", y.disable_audit_logs.value ? 1 : 0,
              y.disable_audit_logs.origin.c_str());

    const Settings d = build(Inputs{});
    cr_expect(!d.disable_audit_logs.value && d.disable_audit_logs.origin == "default",
              "default: %d from %s", d.disable_audit_logs.value ? 1 : 0,
              d.disable_audit_logs.origin.c_str());
}

// audit.required (issue 13 item 6): the flag wins over the file; it needs a trail to
// require; disable_audit_logs (the Coder agent's copy only, issue 15) does not take it away.
Test(settings, audit_required) {
    Inputs flag;
    flag.flags.audit_required = true;
    flag.flags.audit_log = "/tmp/a.jsonl";
    const Settings f = build(flag);
    cr_expect(f.audit.required && f.audit.required->value &&
                  f.audit.required->origin == "--audit-required",
              "flag");
    Inputs in_file;
    in_file.file = file("audit:\n  file: /tmp/a.jsonl\n  required: true\n");
    const Settings y = build(in_file);
    cr_expect(
        y.audit.required && y.audit.required->value && y.audit.required->origin == "bad.yaml:3:13",
        "file: from %s", y.audit.required ? y.audit.required->origin.c_str() : "(unset)");
    cr_expect(!build(Inputs{}).audit.required, "default: not required");

    Inputs no_sink;
    no_sink.flags.audit_required = true;
    const auto r = build_settings(no_sink);
    cr_assert(!r.ok() && r.error().message.find("audit.required (from --audit-required): there "
                                                "is no audit trail to require") == 0,
              "%s", r.ok() ? "accepted" : r.error().message.c_str());
    Inputs both;
    both.flags.audit_required = true;
    both.flags.disable_audit_logs = true;
    both.flags.audit_log = "/tmp/a.jsonl";
    const auto d = build_settings(both);
    cr_assert(d.ok() && d->audit.required->value && d->audit_file, "%s",
              d.ok() ? "" : d.error().message.c_str());
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

Test(settings, other_environment_is_ignored) {
    Inputs in;
    in.env["HTTP_PROXY"] = "http://evil:1/";
    in.env["ALLOW"] = "domain=*";
    in.env["LOG_LEVEL"] = "debug";
    const Settings s = build(in);
    cr_expect(s.engine->allow_rules().empty(), "only the documented variables add rules");
    cr_expect(s.log_level.value == "warn" && s.log_level.origin == "default",
              "LOG_LEVEL is not a landjail variable: %s from %s", s.log_level.value.c_str(),
              s.log_level.origin.c_str());
}

Test(settings, max_connections_flag_over_file) {
    const Settings none = build(Inputs{});
    cr_expect(!none.max_connections.has_value(), "max_connections has no default here");

    Inputs in;
    in.file = file("max_connections: 300\n");
    Settings s = build(in);
    cr_assert(s.max_connections.has_value());
    cr_expect(s.max_connections->value == 300 && s.max_connections->origin == "bad.yaml:1:18",
              "file: %u from %s", s.max_connections->value, s.max_connections->origin.c_str());

    in.flags.max_connections = "7";
    s = build(in);
    cr_assert(s.max_connections.has_value());
    cr_expect(s.max_connections->value == 7 && s.max_connections->origin == "--max-connections",
              "flag: %u from %s", s.max_connections->value, s.max_connections->origin.c_str());
}

Test(settings, max_connections_flag_errors) {
    for (const char* bad : {"0", "-3", "abc", "12x", "1048577", " 5", ""}) {
        Inputs in;
        in.flags.max_connections = bad;
        const std::string what = build_error(in);
        cr_expect(what.find("--max-connections") != std::string::npos,
                  "--max-connections '%s': \"%s\" does not name the flag", bad, what.c_str());
    }
}
