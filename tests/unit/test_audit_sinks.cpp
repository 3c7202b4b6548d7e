// SPDX-License-Identifier: Apache-2.0
// The audit trail's socket and stderr sinks (proxy::Auditor, DESIGN §6): the socket gets every
// line, reconnects later and is told what it missed; stderr gets one logfmt line per denial.
#include "tests/unit/audit_support.hpp"

using namespace lj::test::audit_support;

Test(audit, socket_sink_receives_lines, .timeout = 20) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/audit.sock";
    const int listener = unix_listener(path);
    Auditor::Options o;
    o.socket = path;
    o.stderr_denials = false;
    auto a = must_start(o);
    (void)a->record(deny_post());
    (void)a->record(allow_get(1));
    (void)a->record(allow_get(2));
    a->stop();
    const int conn = accept_one(listener);
    const auto lines = split_lines(read_all(conn));
    cr_assert_eq(lines.size(), 3u, "%zu lines", lines.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
        cr_assert_eq(parse(lines[i])["seq"].get<std::uint64_t>(), i + 1);
    }
    ::close(conn);
    ::close(listener);
    std::filesystem::remove_all(dir);
}

Test(audit, socket_sink_reconnects_later, .timeout = 20) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/audit.sock";
    Auditor::Options o;
    o.file = dir + "/audit.jsonl";
    o.socket = path;  // nobody listens yet: not an error
    o.stderr_denials = false;
    auto a = must_start(o);
    (void)a->record(allow_get(1));
    wait_written(*a, 1);
    const int listener = unix_listener(path);
    std::this_thread::sleep_for(1200ms);  // past the 1 s reconnect interval
    (void)a->record(allow_get(2));
    wait_written(*a, 2);
    const int conn = accept_one(listener);
    a->stop();
    const auto lines = split_lines(read_all(conn));
    cr_assert_eq(lines.size(), 2u, "%zu lines on the socket", lines.size());
    // The event sent while nobody listened is counted, and the collector is told first.
    const ordered_json notice = parse(lines[0]);
    cr_assert(notice["event"] == "audit_dropped" && notice["count"] == 1 &&
                  notice["sink"] == "socket" && notice["reason"] == "disconnected",
              "%s", lines[0].c_str());
    cr_assert_eq(parse(lines[1])["seq"], 2, "%s", lines[1].c_str());
    cr_assert_eq(a->socket_lost(), 1u);
    const auto file = read_lines(*o.file);
    cr_assert_eq(file.size(), 3u, "the file gets every event, and the socket's notice");
    cr_assert_eq(parse(file[1])["sink"], "socket", "%s", file[1].c_str());
    ::close(conn);
    ::close(listener);
    std::filesystem::remove_all(dir);
}

Test(audit, stderr_gets_one_logfmt_line_per_denial, .timeout = 20) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/stderr.txt";
    const int out = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int saved = ::dup(STDERR_FILENO);
    cr_assert(out >= 0 && saved >= 0 && ::dup2(out, STDERR_FILENO) == STDERR_FILENO);
    {
        auto a = must_start(Auditor::Options{});
        (void)a->record(deny_post());
        (void)a->record(allow_get(1));
        AuditEvent c;
        c.event = "connect_denied";
        c.reason = "no_rule_matched";
        c.destination = "10.0.0.1:22";
        (void)a->record(c);
        a->stop();
    }
    ::dup2(saved, STDERR_FILENO);
    const auto lines = read_lines(path);
    cr_assert_eq(lines.size(), 2u, "%zu stderr lines", lines.size());
    cr_assert_eq(lines[0], Auditor::to_logfmt(deny_post()), "%s", lines[0].c_str());
    cr_assert(lines[1].starts_with("landjail_connect_denied decision=deny "), "%s",
              lines[1].c_str());
    ::close(out);
    ::close(saved);
    std::filesystem::remove_all(dir);
}
