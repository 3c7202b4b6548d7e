// SPDX-License-Identifier: Apache-2.0
// The audit trail's formats (proxy::Auditor, DESIGN §6): golden JSON lines, the field order,
// the time format, control bytes and invalid UTF-8 kept on one line, long queries cut; the
// supervisor's wire form round-trips and rejects what is not a jail event; logfmt denial lines.
#include "tests/unit/audit_support.hpp"

using namespace lj::test::audit_support;

// ---- to_json ---------------------------------------------------------------------------

Test(audit, json_golden_every_field) {
    AuditEvent e = deny_post();
    e.matched_rule = "domain=example.com method=GET";
    e.destination = "93.184.216.34:443";
    e.status = 403;
    const std::string want =
        R"({"time":"2026-11-23T10:00:00.123456Z","session_id":"s-1","seq":42,)"
        R"("event":"http_request","decision":"deny","http_method":"POST",)"
        R"("http_url":"https://example.com/upload","host":"example.com",)"
        R"("matched_rule":"domain=example.com method=GET","reason":"no_rule_matched",)"
        R"("pid":4242,"exe":"/usr/bin/curl","destination":"93.184.216.34:443","status":403,)"
        R"("workspace_id":"ws-1","workspace_name":"dev","owner":"alice","template_id":"tpl-7",)"
        R"("template_version_id":"tv-3"})";
    const std::string got = json_line(e, all_labels());
    cr_assert_eq(got, want, "\n got: %s\nwant: %s", got.c_str(), want.c_str());
}

// The jail's events have no HTTP request: no http_method, http_url, host or matched_rule.
Test(audit, json_golden_jail_event) {
    AuditEvent e;
    e.event = "connect_denied";
    e.reason = "not_the_proxy";
    e.pid = 4242;
    e.exe = "/usr/bin/curl";
    e.destination = "93.184.216.34:443";
    const std::string want =
        R"({"time":"2026-11-23T10:00:00.123456Z","session_id":"s-1","seq":42,)"
        R"("event":"connect_denied","decision":"deny","reason":"not_the_proxy",)"
        R"("pid":4242,"exe":"/usr/bin/curl","destination":"93.184.216.34:443"})";
    const std::string got = json_line(e);
    cr_assert_eq(got, want, "\n got: %s\nwant: %s", got.c_str(), want.c_str());
}

// landjail's supervisor -> landjail-proxy --event-fd: what is sent comes back equal.
Test(audit, wire_round_trip) {
    AuditEvent e;
    e.event = "socket_denied";
    e.reason = "socket_type_not_allowed";
    e.pid = 7;
    e.exe = "/bin/x \"quoted\"\n";
    e.destination = "socket(AF_INET, SOCK_DGRAM, 0)";
    const std::string line = lj::proxy::event_to_wire(e);
    cr_assert_eq(line.back(), '\n');
    cr_assert_eq(line.find('\n'), line.size() - 1, "one line: %s", line.c_str());
    auto back = lj::proxy::event_from_wire(std::string_view(line).substr(0, line.size() - 1));
    cr_assert(back.ok(), "%s", back ? "" : back.error().message.c_str());
    cr_assert_eq(back->event, e.event);
    cr_assert_eq(back->reason, e.reason);
    cr_assert_eq(*back->pid, 7);
    cr_assert_eq(*back->exe, *e.exe);
    cr_assert_eq(*back->destination, *e.destination);
    cr_assert(!back->allowed);
}

// Only the jail's event types are accepted from the pipe, and garbage is an error.
Test(audit, wire_rejects) {
    const char* bad[] = {
        "",
        "not json",
        "[1,2]",
        R"({"event":"http_request","allowed":true,"reason":"x","pid":null,"exe":null,"destination":null})",
        R"({"event":"connect_denied","allowed":"no","reason":"x","pid":null,"exe":null,"destination":null})",
        R"({"event":"connect_denied","reason":"x"})",
    };
    for (const char* line : bad) {
        cr_assert(!lj::proxy::event_from_wire(line).ok(), "accepted: %s", line);
    }
}

Test(audit, json_golden_nulls_and_no_labels) {
    AuditEvent e = deny_post();
    e.pid.reset();
    e.exe.reset();
    const std::string want =
        R"({"time":"2026-11-23T10:00:00.123456Z","session_id":"s-1","seq":42,)"
        R"("event":"http_request","decision":"deny","http_method":"POST",)"
        R"("http_url":"https://example.com/upload","host":"example.com","matched_rule":null,)"
        R"("reason":"no_rule_matched","pid":null,"exe":null})";
    const std::string got = json_line(e);
    cr_assert_eq(got, want, "\n got: %s\nwant: %s", got.c_str(), want.c_str());
}

Test(audit, json_allow_and_some_labels) {
    Labels l;
    l.owner = Setting<std::string>{"bob", "flag"};
    const ordered_json j = parse(json_line(allow_get(7), l));
    cr_assert_eq(j["decision"], "allow");
    cr_assert_eq(j["matched_rule"], "domain=api.example.com method=GET");
    cr_assert_eq(j["owner"], "bob");
    cr_assert(!j.contains("workspace_id") && !j.contains("template_id"));
    cr_assert(!j.contains("destination") && !j.contains("status"));
}

Test(audit, json_field_order_is_design_6) {
    AuditEvent e = deny_post();
    e.destination = "1.2.3.4:443";
    e.status = 403;
    const std::string got = join(keys(parse(json_line(e, all_labels()))));
    const std::string want =
        "time,session_id,seq,event,decision,http_method,http_url,host,matched_rule,reason,pid,"
        "exe,destination,status,workspace_id,workspace_name,owner,template_id,"
        "template_version_id";
    cr_assert_eq(got, want, "\n got: %s\nwant: %s", got.c_str(), want.c_str());
}

Test(audit, json_time_format) {
    const std::regex rfc3339(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$)");
    const auto now = std::chrono::system_clock::now();
    const std::string t = parse(Auditor::to_json(deny_post(), "s", 1, now, {}))["time"];
    cr_assert(std::regex_match(t, rfc3339), "time %s", t.c_str());
    // Leading zeros everywhere: 2001-02-03T04:05:06.000007Z.
    const auto early =
        std::chrono::sys_days{std::chrono::year{2001} / 2 / 3} + 4h + 5min + 6s + 7us;
    const std::string e = parse(Auditor::to_json(deny_post(), "s", 1, early, {}))["time"];
    cr_assert_eq(e, "2001-02-03T04:05:06.000007Z", "time %s", e.c_str());
    const std::string epoch = parse(
        Auditor::to_json(deny_post(), "s", 1, std::chrono::system_clock::time_point{}, {}))["time"];
    cr_assert_eq(epoch, "1970-01-01T00:00:00.000000Z", "time %s", epoch.c_str());
}

Test(audit, json_control_chars_and_invalid_utf8_stay_one_line) {
    AuditEvent e = deny_post();
    e.http_url = kControlUrl;
    e.host =
        "ex\xff\xfe"
        "ample.com";       // invalid UTF-8
    e.exe = "/bin/\xc3(";  // truncated 2-byte sequence
    e.matched_rule = "tab\there \"quoted\" back\\slash";
    const std::string line = json_line(e);
    const ordered_json j = parse(line);
    for (const char c : line) {
        cr_assert(static_cast<unsigned char>(c) >= 0x20, "raw control byte in %s",
                  printable(line).c_str());
    }
    cr_assert_eq(j["http_url"], kControlUrl);
    cr_assert_eq(j["host"],
                 "ex\xef\xbf\xbd\xef\xbf\xbd"
                 "ample.com");  // U+FFFD each
    cr_assert_eq(j["matched_rule"], "tab\there \"quoted\" back\\slash");
    cr_assert_eq(j["seq"], 42);
}

Test(audit, json_long_query_truncated) {
    AuditEvent e = deny_post();
    const std::string base = "https://example.com/search?";
    e.http_url = base + "token=" + std::string(5000, 'a');
    const std::string url = parse(json_line(e))["http_url"];
    cr_assert_eq(url, base + "token=" + std::string(250, 'a') + "\xE2\x80\xA6", "url %s",
                 url.c_str());
    // Exactly 256 bytes of query is kept whole; a path without a query is never cut.
    e.http_url = base + std::string(256, 'q');
    cr_assert_eq(parse(json_line(e))["http_url"], e.http_url);
    e.http_url = "https://example.com/" + std::string(3000, 'p');
    cr_assert_eq(parse(json_line(e))["http_url"], e.http_url);
    // The cut never splits a UTF-8 character: 255 ASCII bytes, then "é" (2 bytes).
    e.http_url = base + std::string(255, 'x') + "\xC3\xA9" + "tail";
    const std::string cut = parse(json_line(e))["http_url"];
    cr_assert_eq(cut, base + std::string(255, 'x') + "\xE2\x80\xA6", "url %s", cut.c_str());
}

// ---- to_logfmt -------------------------------------------------------------------------

Test(audit, logfmt_denial) {
    AuditEvent e;
    e.http_method = "GET";
    e.http_url = "https://x/y";
    e.host = "x";
    e.reason = "no_rule_matched";
    e.matched_rule = "domain=a.com method=GET";
    const std::string got = Auditor::to_logfmt(e);
    const std::string want =
        "landjail_request decision=deny http_method=GET http_url=https://x/y host=x "
        "reason=no_rule_matched matched_rule=\"domain=a.com method=GET\"";
    cr_assert_eq(got, want, "\n got: %s\nwant: %s", got.c_str(), want.c_str());
}

Test(audit, logfmt_quoting_and_escaping) {
    AuditEvent e;
    e.http_method = "GET";
    e.http_url = "https://x/a b";
    e.host = "x";
    e.reason = "say \"hi\" \\ now";
    e.exe = "/tmp/evil\n\x1b[2Jname";
    const std::string got = Auditor::to_logfmt(e);
    const std::string want =
        "landjail_request decision=deny http_method=GET http_url=\"https://x/a b\" host=x "
        "reason=\"say \\\"hi\\\" \\\\ now\" exe=\"/tmp/evil\\n\\u001b[2Jname\"";
    cr_assert_eq(got, want, "\n got: %s\nwant: %s", printable(got).c_str(),
                 printable(want).c_str());
    e.exe = "\xff";
    const std::string bad = Auditor::to_logfmt(e);
    cr_assert(bad.ends_with(" exe=\"\\ufffd\""), "%s", printable(bad).c_str());
}

Test(audit, logfmt_connect_denied) {
    AuditEvent e;
    e.event = "connect_denied";
    e.reason = "no_rule_matched";
    e.destination = "1.2.3.4:443";
    e.pid = 42;
    e.exe = "/usr/bin/curl";
    const std::string got = Auditor::to_logfmt(e);
    const std::string want =
        "landjail_connect_denied decision=deny reason=no_rule_matched destination=1.2.3.4:443 "
        "pid=42 exe=/usr/bin/curl";
    cr_assert_eq(got, want, "\n got: %s\nwant: %s", got.c_str(), want.c_str());
}

Test(audit, logfmt_long_query_truncated) {
    AuditEvent e;
    e.http_url = "https://x/?k=" + std::string(1000, 'v');
    const std::string got = Auditor::to_logfmt(e);
    cr_assert(got.find(std::string(300, 'v')) == std::string::npos, "%s", got.c_str());
}
