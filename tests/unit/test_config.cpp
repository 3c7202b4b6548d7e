// SPDX-License-Identifier: Apache-2.0
// The YAML config file (parse_config): every key of DESIGN §4 with its type, origins of
// values and rules, and errors located at file:line:column that quote what is wrong.
#include <string>

#include "policy/config.hpp"
#include "tests/unit/lj_test.hpp"

using lj::policy::FileConfig;
using lj::policy::parse_config;
using lj::test::contains_any;
using lj::test::cr_str;
using lj::test::describe;
using lj::test::has_location;

namespace {

FileConfig must_parse(const char* text) {
    auto r = parse_config(text, "bad.yaml");
    cr_assert(r.ok(), "config should parse: %s\n---\n%s", describe(r).c_str(), text);
    return std::move(*r);
}

template <class T>
bool is(const std::optional<lj::policy::Setting<T>>& s, const T& value, const char* origin) {
    return s.has_value() && s->value == value && s->origin == origin;
}

template <class T>
std::string show(const std::optional<lj::policy::Setting<T>>& s) {
    if (!s) {
        return "(unset)";
    }
    if constexpr (std::is_same_v<T, std::string>) {
        return "\"" + s->value + "\" from " + s->origin;
    } else {
        return std::to_string(s->value) + " from " + s->origin;
    }
}

const char kFull[] =
    "allowlist:\n"                                   // 1
    "  - domain=github.com\n"                        // 2
    "  - \"domain=api.example.com method=GET\"\n"    // 3
    "denylist:\n"                                    // 4
    "  - domain=evil.github.com\n"                   // 5
    "jail_type: nsjail\n"                            // 6
    "log_dir: /tmp/lj\n"                             // 7
    "proxy_port: 8080\n"                             // 8
    "log_level: debug\n"                             // 9
    "no_user_namespace: true\n"                      // 10
    "use_real_dns: false\n"                          // 11
    "pprof_enabled: true\n"                          // 12
    "pprof_port: 6060\n"                             // 13
    "disable_audit_logs: false\n"                    // 14
    "configure_dns_for_local_stub_resolver: true\n"  // 15
    "audit:\n"                                       // 16
    "  file: /tmp/audit.jsonl\n"                     // 17
    "  socket: /run/lj/audit.sock\n"                 // 18
    "  stderr: true\n"                               // 19
    "  http:\n"                                      // 20
    "    url: https://collector.example/ingest\n"    // 21
    "    batch_size: 50\n"                           // 22
    "    flush_interval_ms: 250\n"                   // 23
    "    spool_dir: /var/spool/lj\n"                 // 24
    "tls:\n"                                         // 25
    "  passthrough:\n"                               // 26
    "    - \"*.bank.example\"\n"                     // 27
    "    - pinned.example.com\n"                     // 28
    "  upstream_ca: /etc/lj/ca.pem\n"                // 29
    "labels:\n"                                      // 30
    "  workspace_id: ws-1\n"                         // 31
    "  workspace_name: dev\n"                        // 32
    "  owner: alice\n"                               // 33
    "  template_id: t-1\n"                           // 34
    "  template_version_id: tv-1\n";                 // 35

}  // namespace

Test(config, every_key_with_its_type) {
    const FileConfig c = must_parse(kFull);
    cr_expect_eq(c.file, std::string("bad.yaml"));
    cr_assert_eq(c.allowlist.size(), 2U);
    cr_expect_eq(c.allowlist[0].text, std::string("domain=github.com"));
    cr_expect_eq(c.allowlist[0].origin, std::string("bad.yaml:2:5"));
    cr_expect_eq(c.allowlist[1].text, std::string("domain=api.example.com method=GET"));
    cr_expect_eq(c.allowlist[1].origin, std::string("bad.yaml:3:5"));
    cr_assert_eq(c.denylist.size(), 1U);
    cr_expect_eq(c.denylist[0].text, std::string("domain=evil.github.com"));
    cr_expect_eq(c.denylist[0].origin, std::string("bad.yaml:5:5"));

    cr_expect(is<std::string>(c.jail_type, "nsjail", "bad.yaml:6:12"), "jail_type %s",
              show(c.jail_type).c_str());
    cr_expect(is<std::string>(c.log_dir, "/tmp/lj", "bad.yaml:7:10"), "log_dir %s",
              show(c.log_dir).c_str());
    cr_expect(is<std::uint16_t>(c.proxy_port, 8080, "bad.yaml:8:13"), "proxy_port %s",
              show(c.proxy_port).c_str());
    cr_expect(is<std::string>(c.log_level, "debug", "bad.yaml:9:12"), "log_level %s",
              show(c.log_level).c_str());
    cr_expect(is(c.no_user_namespace, true, "bad.yaml:10:20"), "no_user_namespace %s",
              show(c.no_user_namespace).c_str());
    cr_expect(is(c.use_real_dns, false, "bad.yaml:11:15"), "use_real_dns %s",
              show(c.use_real_dns).c_str());
    cr_expect(is(c.pprof_enabled, true, "bad.yaml:12:16"), "pprof_enabled %s",
              show(c.pprof_enabled).c_str());
    cr_expect(is<std::uint16_t>(c.pprof_port, 6060, "bad.yaml:13:13"), "pprof_port %s",
              show(c.pprof_port).c_str());
    cr_expect(is(c.disable_audit_logs, false, "bad.yaml:14:21"), "disable_audit_logs %s",
              show(c.disable_audit_logs).c_str());
    cr_expect(is(c.configure_dns_for_local_stub_resolver, true, "bad.yaml:15:40"),
              "configure_dns_for_local_stub_resolver %s",
              show(c.configure_dns_for_local_stub_resolver).c_str());

    cr_expect(is<std::string>(c.audit.file, "/tmp/audit.jsonl", "bad.yaml:17:9"), "audit.file %s",
              show(c.audit.file).c_str());
    cr_expect(is<std::string>(c.audit.socket, "/run/lj/audit.sock", "bad.yaml:18:11"),
              "audit.socket %s", show(c.audit.socket).c_str());
    cr_expect(is(c.audit.stderr_denials, true, "bad.yaml:19:11"), "audit.stderr %s",
              show(c.audit.stderr_denials).c_str());
    cr_assert(c.audit.http.has_value(), "audit.http");
    cr_expect_eq(c.audit.http->url, std::string("https://collector.example/ingest"));
    cr_expect_eq(c.audit.http->batch_size, 50);
    cr_expect_eq(c.audit.http->flush_interval_ms, 250);
    cr_expect_eq(c.audit.http->spool_dir, std::string("/var/spool/lj"));

    cr_assert_eq(c.tls.passthrough.size(), 2U);
    cr_expect_eq(c.tls.passthrough[0], std::string("*.bank.example"));
    cr_expect_eq(c.tls.passthrough[1], std::string("pinned.example.com"));
    cr_expect(is<std::string>(c.tls.upstream_ca, "/etc/lj/ca.pem", "bad.yaml:29:16"),
              "tls.upstream_ca %s", show(c.tls.upstream_ca).c_str());

    cr_expect(is<std::string>(c.labels.workspace_id, "ws-1", "bad.yaml:31:17"),
              "labels.workspace_id %s", show(c.labels.workspace_id).c_str());
    cr_expect(is<std::string>(c.labels.workspace_name, "dev", "bad.yaml:32:19"),
              "labels.workspace_name %s", show(c.labels.workspace_name).c_str());
    cr_expect(is<std::string>(c.labels.owner, "alice", "bad.yaml:33:10"), "labels.owner %s",
              show(c.labels.owner).c_str());
    cr_expect(is<std::string>(c.labels.template_id, "t-1", "bad.yaml:34:16"),
              "labels.template_id %s", show(c.labels.template_id).c_str());
    cr_expect(is<std::string>(c.labels.template_version_id, "tv-1", "bad.yaml:35:24"),
              "labels.template_version_id %s", show(c.labels.template_version_id).c_str());
}

Test(config, audit_http_defaults) {
    const FileConfig c = must_parse("audit:\n  http:\n    url: http://127.0.0.1:9/x\n");
    cr_assert(c.audit.http.has_value());
    cr_expect_eq(c.audit.http->url, std::string("http://127.0.0.1:9/x"));
    cr_expect_eq(c.audit.http->batch_size, 100);
    cr_expect_eq(c.audit.http->flush_interval_ms, 1000);
    cr_expect(c.audit.http->spool_dir.empty(), "spool_dir defaults to empty");
    cr_expect(!c.audit.file && !c.audit.socket && !c.audit.stderr_denials, "other sinks unset");
}

Test(config, empty_documents_are_valid) {
    for (const char* text : {"", "\n", "# only a comment\n", "---\n", "{}\n", "---\n...\n"}) {
        auto r = parse_config(text, "bad.yaml");
        cr_assert(r.ok(), "\"%s\": %s", text, describe(r).c_str());
        const FileConfig& c = *r;
        cr_expect(c.allowlist.empty() && c.denylist.empty(), "\"%s\": no rules", text);
        cr_expect(!c.jail_type && !c.log_dir && !c.proxy_port && !c.log_level &&
                      !c.no_user_namespace && !c.use_real_dns && !c.pprof_enabled &&
                      !c.pprof_port && !c.disable_audit_logs &&
                      !c.configure_dns_for_local_stub_resolver,
                  "\"%s\": nothing set", text);
        cr_expect(!c.audit.file && !c.audit.http && !c.tls.upstream_ca &&
                      c.tls.passthrough.empty() && !c.labels.owner,
                  "\"%s\": no sections", text);
    }
    const FileConfig lists = must_parse("allowlist: []\ndenylist: []\n");
    cr_expect(lists.allowlist.empty() && lists.denylist.empty(), "empty lists");
}

Test(config, boundary_example_parses) {
    const FileConfig c = must_parse(
        "# coder/boundary config.yaml\n"
        "jail_type: landjail\n"
        "log_dir: /tmp/boundary_logs\n"
        "proxy_port: 8080\n"
        "log_level: warn\n"
        "allowlist:\n"
        "  - \"domain=github.com\"\n"
        "  - \"domain=*.npmjs.org\"\n"
        "  - \"domain=api.anthropic.com method=POST path=/v1/messages\"\n"
        "  - \"domain=pypi.org method=GET,HEAD\"\n");
    cr_expect(is<std::string>(c.jail_type, "landjail", "bad.yaml:2:12"), "jail_type %s",
              show(c.jail_type).c_str());
    cr_expect(c.log_dir && c.log_dir->value == "/tmp/boundary_logs", "log_dir %s",
              show(c.log_dir).c_str());
    cr_expect(c.proxy_port && c.proxy_port->value == 8080, "proxy_port");
    cr_expect(c.log_level && c.log_level->value == "warn", "log_level");
    cr_assert_eq(c.allowlist.size(), 4U);
    cr_expect_eq(c.allowlist[2].text,
                 std::string("domain=api.anthropic.com method=POST path=/v1/messages"));
    cr_expect_eq(c.allowlist[2].origin, std::string("bad.yaml:9:5"));
    cr_expect_eq(c.allowlist[3].origin, std::string("bad.yaml:10:5"));
}

// The keys newer boundary releases write (upstream_proxy, log_proxy_socket_path, session
// correlation) load with their values and origins; empty strings are boundary's defaults.
Test(config, newer_boundary_keys_load) {
    const FileConfig c = must_parse(
        "upstream_proxy: http://proxy.corp:3128\n"                 // 1
        "log_proxy_socket_path: \"\"\n"                            // 2
        "session_correlation_enabled: true\n"                      // 3
        "session_id_inject_targets:\n"                             // 4
        "  - \"domain=prod.coder.com path=/api/v2/aibridge/*\"\n"  // 5
        "session_id_header_name: X-Coder-Session\n"                // 6
        "sequence_number_header_name: X-Coder-Seq\n"               // 7
        "allowlist:\n"                                             // 8
        "  - domain=github.com\n");                                // 9
    const auto& b = c.boundary_only;
    cr_expect(is<std::string>(b.upstream_proxy, "http://proxy.corp:3128", "bad.yaml:1:17"),
              "upstream_proxy %s", show(b.upstream_proxy).c_str());
    cr_expect(is<std::string>(b.log_proxy_socket_path, "", "bad.yaml:2:24"),
              "log_proxy_socket_path %s", show(b.log_proxy_socket_path).c_str());
    cr_expect(is(b.session_correlation_enabled, true, "bad.yaml:3:30"), "correlation %s",
              show(b.session_correlation_enabled).c_str());
    cr_assert_eq(b.session_id_inject_targets.size(), 1U);
    cr_expect_eq(b.session_id_inject_targets[0].origin, std::string("bad.yaml:5:5"));
    cr_expect(is<std::string>(b.session_id_header_name, "X-Coder-Session", "bad.yaml:6:25"),
              "session_id_header_name %s", show(b.session_id_header_name).c_str());
    cr_expect(is<std::string>(b.sequence_number_header_name, "X-Coder-Seq", "bad.yaml:7:30"),
              "sequence_number_header_name %s", show(b.sequence_number_header_name).c_str());
    cr_expect_eq(c.allowlist.size(), 1U);

    auto bad = parse_config("session_id_inject_targets: prod.coder.com\n", "bad.yaml");
    cr_expect(!bad.ok() && contains_any(bad.error().what(), "bad.yaml:1:28") &&
                  contains_any(bad.error().what(), "expected a list"),
              "a scalar where a list belongs: %s",
              bad.ok() ? "accepted" : bad.error().what().c_str());
}

// A profile holds rules only: every other key, known or boundary's, is refused where it
// stands; allowlist and denylist parse as in a config file.
Test(config, profiles_hold_rules_only) {
    for (const char* key : {"log_dir: /tmp/x\n", "audit:\n  file: /tmp/a\n",
                            "upstream_proxy: http://p:3128\n", "labels:\n  owner: me\n"}) {
        const std::string text = std::string("allowlist:\n  - domain=a.example\n") + key;
        auto r = lj::policy::parse_profile(text, "p.yaml");
        cr_expect(
            !r.ok() && contains_any(r.error().what(), "p.yaml:3:1: sets '") &&
                contains_any(r.error().what(), "a profile may only set allowlist and denylist"),
            "%s: %s", key, r.ok() ? "accepted" : r.error().what().c_str());
    }
    auto ok = lj::policy::parse_profile(
        "allowlist:\n  - domain=a.example\ndenylist:\n  - domain=b.example\n", "p.yaml");
    cr_assert(ok.ok(), "%s", ok.ok() ? "" : ok.error().what().c_str());
    cr_expect_eq(ok->allowlist.size(), 1U);
    cr_expect_eq(ok->denylist.size(), 1U);
}

Test(config, log_levels_and_flow_style) {
    for (const char* level : {"error", "warn", "info", "debug"}) {
        const std::string text = std::string("log_level: ") + level + "\n";
        auto r = parse_config(text, "bad.yaml");
        cr_assert(r.ok(), "log_level %s: %s", level, describe(r).c_str());
        cr_expect(r->log_level && r->log_level->value == level, "log_level %s", level);
    }
    const FileConfig c = must_parse("{allowlist: [domain=a.com, \"domain=b.com method=GET\"]}\n");
    cr_assert_eq(c.allowlist.size(), 2U);
    cr_expect_eq(c.allowlist[1].text, std::string("domain=b.com method=GET"));
    cr_expect_eq(c.allowlist[0].origin, std::string("bad.yaml:1:14"));
}

// ---- errors: one case per line ------------------------------------------------------------

namespace {

/// `where` is the exact "bad.yaml:L:C:" prefix expected, or "" when only a location of
/// some kind is required (YAML syntax errors); `needle` lists words one of which the message
/// must contain.
struct ErrRow {
    const char* text;
    const char* where;
    const char* needle;
};

struct ErrCase {
    char* text;
    char* where;
    char* needle;
};

const ErrRow kErrRows[] = {
    {"allowlist:\n  - domain=a.com\nallowlst: []\n", "bad.yaml:3:1:", "allowlst"},
    {"log_level: warn\nloglevel: info\n", "bad.yaml:2:1:", "loglevel"},
    {"audit:\n  fil: x\n", "bad.yaml:2:3:", "fil"},
    {"audit: {fil: x}\n", "bad.yaml:1:9:", "fil"},
    {"tls:\n  upstrem_ca: x\n", "bad.yaml:2:3:", "upstrem_ca"},
    {"labels:\n  workspace: x\n", "bad.yaml:2:3:", "workspace"},
    {"audit:\n  http:\n    uri: x\n", "bad.yaml:3:5:", "uri"},
    {"Allowlist: []\n", "bad.yaml:1:1:", "Allowlist"},
    {"proxy_port: abc\n", "bad.yaml:1:13:", "abc"},
    {"proxy_port: 70000\n", "bad.yaml:1:13:", "70000"},
    {"proxy_port: -1\n", "bad.yaml:1:13:", "-1"},
    {"proxy_port: 80.5\n", "bad.yaml:1:13:", "80.5"},
    {"pprof_port: 99999\n", "bad.yaml:1:13:", "99999"},
    {"max_connections: 0\n", "bad.yaml:1:18:", "1 to 1048576"},
    {"max_connections: 1048577\n", "bad.yaml:1:18:", "1048577"},
    {"max_connections: lots\n", "bad.yaml:1:18:", "lots"},
    {"max_connections: 2.5\n", "bad.yaml:1:18:", "2.5"},
    {"log_level: verbose\n", "bad.yaml:1:12:", "verbose"},
    {"log_level: [warn]\n", "bad.yaml:1:12:", "log_level|string|scalar"},
    {"jail_type: docker\n", "bad.yaml:1:12:", "docker"},
    {"allowlist: \"domain=x\"\n", "bad.yaml:1:12:", "domain=x"},
    {"allowlist:\n  domain: x\n", "bad.yaml:2:3:", "allowlist|list|sequence"},
    {"use_real_dns: maybe\n", "bad.yaml:1:15:", "maybe"},
    {"no_user_namespace: 3\n", "bad.yaml:1:20:", "3"},
    {"pprof_enabled: [true]\n", "bad.yaml:1:16:", "pprof_enabled|bool"},
    {"disable_audit_logs: sometimes\n", "bad.yaml:1:21:", "sometimes"},
    {"labels:\n  owner: [a]\n", "bad.yaml:2:10:", "owner|string|scalar"},
    {"tls:\n  passthrough: example.com\n", "bad.yaml:2:16:", "example.com"},
    {"audit:\n  http:\n    url: http://x\n    batch_size: many\n", "bad.yaml:4:17:", "many"},
    {"audit:\n  stderr: loud\n", "bad.yaml:2:11:", "loud"},
    {"proxy_port: 1\nproxy_port: 2\n", "bad.yaml:2:1:", "proxy_port"},
    {"audit:\n  file: a\n  file: b\n", "bad.yaml:3:3:", "file"},
    {"- a\n- b\n", "bad.yaml:1:1:", "map"},
    {"just a string\n", "bad.yaml:1:1:", "map"},
    {"allowlist:\n  - domain=a.com\n  - domain=github.com:443\n",
     "bad.yaml:3:5:", "domain=github.com:443"},
    {"allowlist:\n  - domain=a.com\n  - \"domain=https://github.com\"\n",
     "bad.yaml:3:5:", "domain=https://github.com"},
    {"allowlist:\n  - \"\"\n", "bad.yaml:2:5:", "empty"},
    {"allowlist:\n  - \"   \"\n", "bad.yaml:2:5:", "empty"},
    {"allowlist:\n  - domain=a.com\n  - [x]\n", "bad.yaml:3:5:", "string|scalar|rule"},
    {"allowlist:\n  -\n", "bad.yaml:", "empty|null|rule"},
    {"denylist:\n  - host=x\n", "bad.yaml:2:5:", "host=x"},
    {"denylist:\n  - domain=ok.com\n  - DOMAIN=x.com\n", "bad.yaml:3:5:", "DOMAIN=x.com"},
    {"allowlist: [domain=a.com, path=/a/../b]\n", "bad.yaml:1:27:", "path=/a/../b"},
    {"allowlist: [a, b\n", "bad.yaml:2:1:", ""},
    {"a: b: c\n", "bad.yaml:1:5:", ""},
    {"allowlist:\n  - domain=a.com\n - domain=b.com\n", "bad.yaml:3:2:", ""},
    {"allowlist:\n\t- domain=a.com\n", "bad.yaml:2:2:", ""},
};

}  // namespace

ParameterizedTestParameters(config, errors) {
    static criterion::parameters<ErrCase> params;
    if (params.empty()) {
        for (const ErrRow& r : kErrRows) {
            params.push_back(ErrCase{cr_str(r.text), cr_str(r.where), cr_str(r.needle)});
        }
    }
    return params;
}

ParameterizedTest(ErrCase* c, config, errors) {
    const std::string row = lj::test::printable(c->text);
    auto r = parse_config(c->text, "bad.yaml");
    cr_assert(!r.ok(), "config \"%s\" should be rejected", row.c_str());
    const std::string what = r.error().what();
    cr_expect(what.rfind(c->where, 0) == 0, "config \"%s\": error \"%s\" should start with \"%s\"",
              row.c_str(), what.c_str(), c->where);
    cr_expect(has_location(what, "bad.yaml"), "config \"%s\": \"%s\" has no file:line:col",
              row.c_str(), what.c_str());
    cr_expect(contains_any(what, c->needle), "config \"%s\": error \"%s\" should mention %s",
              row.c_str(), what.c_str(), c->needle);
    cr_expect(r.error().file == "bad.yaml" && r.error().line > 0 && r.error().column > 0,
              "config \"%s\": Error fields file=%s line=%d column=%d", row.c_str(),
              r.error().file.c_str(), r.error().line, r.error().column);
}

Test(config, unknown_key_suggests_the_right_one) {
    auto r = parse_config("allowlist:\n  - domain=a.com\nallowlst: []\n", "bad.yaml");
    cr_assert(!r.ok());
    cr_expect(contains_any(r.error().what(), "allowlst"), "%s", r.error().what().c_str());
    cr_expect(contains_any(r.error().what(), "unknown"), "says the key is unknown: %s",
              r.error().what().c_str());
}
