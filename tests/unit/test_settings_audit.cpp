// SPDX-License-Identifier: Apache-2.0
// build_settings, the audit trail's settings: the audit file's default, empty paths never
// meaning the root, --disable-audit-logs, and audit_required.
#include "tests/unit/settings_support.hpp"

using namespace lj::test::settings_support;

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
