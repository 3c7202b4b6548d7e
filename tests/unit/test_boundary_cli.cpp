// SPDX-License-Identifier: Apache-2.0
// boundary's command line and settings, as landjail reads them (issue 15, item 4): flags as
// --flag=WORD with the words boundary's flag library reads, boundary's flags kept with their
// origins, values in any letter case where boundary reads them so, "" in the environment as
// "not set", rules without domain= (one warning each), the CA directory's sources, and the
// CLI under boundary's names (no subcommands, a later -- for the command).
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "landjail/cli.hpp"
#include "landjail/subcommands.hpp"
#include "policy/config.hpp"
#include "policy/request.hpp"
#include "policy/settings.hpp"
#include "tests/unit/lj_test.hpp"

using lj::jail::CliOptions;
using lj::jail::Command;
using lj::jail::parse_cli;
using lj::policy::build_settings;
using lj::policy::FileConfig;
using lj::policy::Inputs;
using lj::policy::parse_bool_word;
using lj::policy::parse_config;
using lj::policy::Settings;
using lj::test::contains_any;
using lj::test::describe;

namespace {

FileConfig file(const char* text) {
    auto r = parse_config(text, "b.yaml");
    cr_assert(r.ok(), "config: %s", describe(r).c_str());
    return std::move(*r);
}

Settings build(const Inputs& in) {
    auto r = build_settings(in);
    cr_assert(r.ok(), "build_settings: %s", describe(r).c_str());
    return std::move(*r);
}

/// parse_cli over a list of arguments (argv[0] first).
lj::Result<CliOptions> cli(std::initializer_list<const char*> args, bool as_boundary = false) {
    std::vector<std::string> owned(args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : owned) {
        argv.push_back(a.data());
    }
    return parse_cli(static_cast<int>(argv.size()), argv.data(), nullptr, as_boundary);
}

CliOptions cli_ok(std::initializer_list<const char*> args, bool as_boundary = false) {
    auto r = cli(args, as_boundary);
    cr_assert(r.ok(), "parse_cli: %s", describe(r).c_str());
    return std::move(*r);
}

}  // namespace

// Go's strconv.ParseBool words (what serpent's Bool reads from flags, variables and YAML)
// and YAML's yes/no/on/off, in any letter case; nothing else.
Test(boundary_cli, bool_words) {
    for (const char* w : {"1", "t", "T", "true", "True", "TRUE", "yes", "on", "Y"}) {
        cr_expect(parse_bool_word(w) == std::optional<bool>(true), "%s", w);
    }
    for (const char* w : {"0", "f", "F", "false", "False", "FALSE", "no", "off", "N"}) {
        cr_expect(parse_bool_word(w) == std::optional<bool>(false), "%s", w);
    }
    for (const char* w : {"", "2", "truee", "maybe", " true", "-1"}) {
        cr_expect(!parse_bool_word(w), "'%s' is not a boolean", w);
    }
}

// Every flag of the table takes =WORD (the mechanism, not one flag): false clears it.
Test(boundary_cli, flags_take_true_or_false) {
    const CliOptions on = cli_ok(
        {"landjail", "--no-shim", "--allow-weak=1", "--pprof=T", "--use-real-dns=true", "--", "x"});
    cr_expect(on.no_shim && on.allow_weak);
    cr_expect(on.flags.pprof == std::optional<bool>(true));
    cr_expect(on.flags.use_real_dns == std::optional<bool>(true));
    cr_expect(!on.flags.no_user_namespace, "not given: absent");
    const CliOptions off =
        cli_ok({"landjail", "--no-shim=false", "--allow-weak=0", "--disable-audit-logs=False",
                "--no-user-namespace=f", "--strict=off", "--", "x"});
    cr_expect(!off.no_shim && !off.allow_weak && !off.strict);
    cr_expect(off.flags.disable_audit_logs == std::optional<bool>(false));
    cr_expect(off.flags.no_user_namespace == std::optional<bool>(false));
    cr_expect(cli_ok({"landjail", "--version=false", "--", "x"}).command == Command::Run);
    cr_expect(cli_ok({"landjail", "--help=true"}).command == Command::Help);

    auto bad = cli({"landjail", "--pprof=maybe", "--", "x"});
    cr_assert(!bad.ok());
    cr_expect(contains_any(bad.error().message, "'--pprof' takes true or false, not 'maybe'"), "%s",
              bad.error().message.c_str());
    auto valued = cli({"landjail", "--proxy-port", "--", "x"});
    cr_expect(valued.ok() && valued->flags.proxy_port == std::optional<std::string>("--"),
              "an option with a value still takes the next argument");
}

// --flag=false beats the environment and the file (flag > environment > file).
Test(boundary_cli, false_flag_overrides_environment_and_file) {
    Inputs in;
    in.file = file("disable_audit_logs: true\naudit:\n  required: true\n  file: /tmp/a.jsonl\n");
    in.env = {{"DISABLE_AUDIT_LOGS", "true"}};
    in.flags.disable_audit_logs = false;
    in.flags.audit_required = false;
    const Settings s = build(in);
    cr_expect(!s.disable_audit_logs.value && s.disable_audit_logs.origin == "--disable-audit-logs");
    cr_expect(s.audit.required && !s.audit.required->value);
}

// boundary reads "" in a variable as "not set" (serpent's ParseEnv): the file decides.
Test(boundary_cli, empty_variables_are_not_set) {
    Inputs in;
    in.file = file("disable_audit_logs: true\nlog_level: info\npprof_enabled: 1\n");
    in.env = {{"DISABLE_AUDIT_LOGS", ""}, {"BOUNDARY_LOG_LEVEL", ""}, {"BOUNDARY_PPROF", ""}};
    const Settings s = build(in);
    cr_expect(s.disable_audit_logs.value && s.disable_audit_logs.origin == "b.yaml:1:21", "%s",
              s.disable_audit_logs.origin.c_str());
    cr_expect(s.log_level.value == "info");
    cr_expect(s.pprof_enabled.value && s.pprof_enabled.origin == "b.yaml:3:16", "%s",
              s.pprof_enabled.origin.c_str());
}

// log_level in any letter case (the Coder modules pass WARN), from each source.
Test(boundary_cli, log_level_in_any_case) {
    Inputs in_file;
    in_file.file = file("log_level: WARN\n");
    cr_expect(build(in_file).log_level.value == "warn");
    Inputs env;
    env.env = {{"BOUNDARY_LOG_LEVEL", "Info"}};
    cr_expect(build(env).log_level.value == "info");
    Inputs flag;
    flag.flags.log_level = "DEBUG";
    const Settings s = build(flag);
    cr_expect(s.log_level.value == "debug" && s.log_level.origin == "--log-level");
    auto bad = parse_config("log_level: loud\n", "b.yaml");
    cr_expect(!bad.ok(), "an unknown level is still an error");
    auto jail = parse_config("jail_type: NSJAIL\n", "b.yaml");
    cr_expect(!jail.ok(), "jail_type is exact, as boundary reads it");
}

// YAML booleans as boundary reads them (serpent passes the scalar to strconv.ParseBool).
Test(boundary_cli, yaml_booleans_in_boundary_words) {
    const FileConfig c = file(
        "use_real_dns: 1\nno_user_namespace: T\npprof_enabled: False\n"
        "disable_audit_logs: \"true\"\n");
    cr_expect(c.use_real_dns && c.use_real_dns->value);
    cr_expect(c.no_user_namespace && c.no_user_namespace->value);
    cr_expect(c.pprof_enabled && !c.pprof_enabled->value);
    cr_expect(c.disable_audit_logs && c.disable_audit_logs->value);
    cr_expect(!parse_config("use_real_dns: sometimes\n", "b.yaml").ok());
}

// boundary's flags without effect keep their value and origin: flag > BOUNDARY_* > file.
Test(boundary_cli, boundary_settings_have_origins) {
    Inputs in;
    in.file = file("pprof_port: 7070\nuse_real_dns: true\n");
    in.env = {{"BOUNDARY_PPROF", "1"},
              {"BOUNDARY_NO_USER_NAMESPACE", "true"},
              {"BOUNDARY_UPSTREAM_PROXY", "http://proxy.corp:3128"}};
    in.flags.use_real_dns = false;
    const Settings s = build(in);
    cr_expect(s.pprof_enabled.value && s.pprof_enabled.origin == "BOUNDARY_PPROF");
    cr_expect(s.pprof_port.value == 7070 && s.pprof_port.origin == "b.yaml:1:13");
    cr_expect(!s.use_real_dns.value && s.use_real_dns.origin == "--use-real-dns");
    cr_expect(s.no_user_namespace.value &&
              s.no_user_namespace.origin == "BOUNDARY_NO_USER_NAMESPACE");
    cr_expect(s.upstream_proxy && s.upstream_proxy->origin == "BOUNDARY_UPSTREAM_PROXY");
    int pprof = 0;
    int upstream = 0;
    for (const std::string& w : s.jail_warnings) {
        pprof += contains_any(w, "pprof") ? 1 : 0;
        upstream += contains_any(w, "upstream_proxy") ? 1 : 0;
    }
    cr_expect(pprof == 1 && upstream == 1, "one warning each (pprof %d, upstream %d)", pprof,
              upstream);
    Inputs from_file;
    from_file.file = file("upstream_proxy: http://proxy.corp:3128\n");
    const Settings f = build(from_file);
    cr_expect(f.upstream_proxy && f.upstream_proxy->origin == "b.yaml:1:17");
    cr_expect(f.jail_warnings.empty() && f.warnings.size() == 1U,
              "the file's upstream_proxy is warned about once");
    Inputs port;
    port.flags.pprof_port = "70000";
    auto r = build_settings(port);
    cr_expect(!r.ok() && contains_any(r.error().message, "--pprof-port"), "a bad port is named");
    cr_expect(build(Inputs{}).jail_warnings.empty(), "defaults are silent");
}

// A rule without domain= loads, matches every host, and is warned about once; --strict
// refuses it. Deny rules without domain= only restrict: no warning.
Test(boundary_cli, rules_without_domain_warn_once_each) {
    Inputs in;
    in.file = file("allowlist:\n  - path=/api/v1/*,/api/v2/*\n  - domain=github.com\n");
    in.flags.allow = {"method=GET"};
    in.flags.deny = {"method=DELETE"};
    const Settings s = build(in);
    cr_assert_eq(s.any_host_rules.size(), 2U);
    cr_expect(contains_any(s.any_host_rules[0], "'path=/api/v1/*,/api/v2/*' (from b.yaml:2:5)"),
              "%s", s.any_host_rules[0].c_str());
    cr_expect(contains_any(s.any_host_rules[1], "'method=GET' (from --allow)"));
    int warned = 0;
    for (const std::string& w : s.warnings) {
        warned += contains_any(w, "matches every host") ? 1 : 0;
    }
    cr_expect_eq(warned, 2);
    auto req = lj::policy::parse_request("POST", "https://any.example/api/v2/x");
    cr_assert(req.ok());
    cr_expect(s.engine->evaluate(*req).allowed, "path= alone allows every host");
    auto other = lj::policy::parse_request("POST", "https://any.example/other");
    cr_expect(!s.engine->evaluate(*other).allowed);

    CliOptions strict;
    strict.strict = true;
    auto refused = lj::jail::check_strict(strict, s);
    cr_expect(!refused.ok() && contains_any(refused.error().message, "path=/api/v1/*"));
    cr_expect(lj::jail::check_strict(CliOptions{}, s).ok(), "without --strict: loads");
}

// The CA directory: --ca-dir > LANDJAIL_CA_DIR > ca_dir > $XDG_CONFIG_HOME/landjail > HOME.
Test(boundary_cli, ca_dir_sources) {
    Inputs in;
    in.file = file("ca_dir: /srv/ca\n");
    in.env = {{"LANDJAIL_CA_DIR", "/env/ca"}, {"XDG_CONFIG_HOME", "/xdg"}, {"HOME", "/home/u"}};
    in.flags.ca_dir = "/flag/ca";
    auto s = build(in);
    cr_expect(s.ca_dir.value == "/flag/ca" && s.ca_dir.origin == "--ca-dir");
    in.flags.ca_dir.reset();
    s = build(in);
    cr_expect(s.ca_dir.value == "/env/ca" && s.ca_dir.origin == "LANDJAIL_CA_DIR");
    in.env.erase("LANDJAIL_CA_DIR");
    s = build(in);
    cr_expect(s.ca_dir.value == "/srv/ca" && s.ca_dir.origin == "b.yaml:1:9", "%s",
              s.ca_dir.origin.c_str());
    in.file.reset();
    s = build(in);
    cr_expect(s.ca_dir.value == "/xdg/landjail" && s.ca_dir.origin == "XDG_CONFIG_HOME");
    in.env.erase("XDG_CONFIG_HOME");
    s = build(in);
    cr_expect(s.ca_dir.value == "/home/u/.config/landjail", "%s", s.ca_dir.value.c_str());
}

// Under boundary's names: no subcommands, everything after the options is the command, a
// later -- included; --allow is one rule, commas and all.
Test(boundary_cli, boundary_names_have_no_subcommands) {
    cr_expect(lj::jail::invoked_name("/usr/local/bin/boundary") == "boundary");
    cr_expect(lj::jail::invoked_name("agent-firewall") == "agent-firewall");
    cr_expect(lj::jail::invoked_name("/opt/x/landjail") == "landjail");
    cr_expect(lj::jail::invoked_name("boundary-run") == "landjail");

    const CliOptions c = cli_ok({"boundary", "check"}, true);
    cr_expect(c.command == Command::Run && c.args == std::vector<std::string>{"check"});
    const CliOptions d = cli_ok(
        {"boundary", "--allow", "method=GET,HEAD domain=a.test", "--", "cmd", "--", "--allow"},
        true);
    cr_expect(d.args == (std::vector<std::string>{"cmd", "--", "--allow"}));
    cr_expect(d.flags.allow == std::vector<std::string>{"method=GET,HEAD domain=a.test"});
    cr_expect(cli_ok({"boundary", "--version"}, true).command == Command::Version);
    cr_expect(cli_ok({"landjail", "check"}).command == Command::Check, "landjail keeps them");
    cr_expect(contains_any(lj::jail::help_text("boundary"),
                           "Usage: boundary [flags] -- command [args...]"));
}
