// SPDX-License-Identifier: Apache-2.0
// The audit trail (proxy::Auditor, DESIGN §6): golden JSON lines and logfmt denial lines, and
// the writer: concurrent records keep seq order in the file, a full queue drops (and says so
// in the stream) instead of blocking, stop() flushes, and the socket and stderr sinks.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/audit/auditor.hpp"
#include "tests/unit/lj_test.hpp"

using lj::policy::Labels;
using lj::policy::Setting;
using lj::proxy::AuditEvent;
using lj::proxy::Auditor;
using lj::test::contains_any;
using lj::test::describe;
using lj::test::printable;
using nlohmann::json;
using nlohmann::ordered_json;
using namespace std::chrono_literals;

namespace {

using lj::test::split_lines;

// 2026-11-23T10:00:00.123456Z
const std::chrono::system_clock::time_point kTime =
    std::chrono::sys_days{std::chrono::year{2026} / 11 / 23} + 10h + 123456us;

// Control characters, an escape sequence and a NUL byte.
constexpr char kControlBytes[] = "https://example.com/a\nb\r\x1b[31m\x00z";
const std::string kControlUrl(kControlBytes, sizeof kControlBytes - 1);

AuditEvent deny_post() {
    AuditEvent e;
    e.http_method = "POST";
    e.http_url = "https://example.com/upload";
    e.host = "example.com";
    e.reason = "no_rule_matched";
    e.pid = 4242;
    e.exe = "/usr/bin/curl";
    return e;
}

AuditEvent allow_get(int i) {
    AuditEvent e;
    e.allowed = true;
    e.http_method = "GET";
    e.http_url = "https://api.example.com/v1/items/" + std::to_string(i);
    e.host = "api.example.com";
    e.matched_rule = "domain=api.example.com method=GET";
    e.reason = "allowed";
    return e;
}

Labels all_labels() {
    Labels l;
    l.workspace_id = Setting<std::string>{"ws-1", "test"};
    l.workspace_name = Setting<std::string>{"dev", "test"};
    l.owner = Setting<std::string>{"alice", "test"};
    l.template_id = Setting<std::string>{"tpl-7", "test"};
    l.template_version_id = Setting<std::string>{"tv-3", "test"};
    return l;
}

std::string json_line(const AuditEvent& e, const Labels& labels = {}) {
    return Auditor::to_json(e, "s-1", 42, kTime, labels);
}

/// Parses one line, failing the test when it is not exactly one JSON object.
ordered_json parse(const std::string& line) {
    cr_assert(line.find('\n') == std::string::npos, "a raw newline in: %s",
              printable(line).c_str());
    ordered_json j = ordered_json::parse(line, nullptr, false);
    cr_assert(!j.is_discarded() && j.is_object(), "not a JSON object: %s", printable(line).c_str());
    return j;
}

std::vector<std::string> keys(const ordered_json& j) {
    std::vector<std::string> out;
    for (const auto& item : j.items()) {
        out.push_back(item.key());
    }
    return out;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : ",") + s;
    }
    return out;
}

/// A fresh directory under /tmp (short enough for unix socket paths).
std::string temp_dir() {
    char templ[] = "/tmp/lj-audit-XXXXXX";
    cr_assert(::mkdtemp(templ) != nullptr, "mkdtemp: %s", std::strerror(errno));
    return templ;
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

/// Reads `fd` until EOF.
std::string read_all(int fd) {
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

std::unique_ptr<Auditor> must_start(Auditor::Options options) {
    auto r = Auditor::start(std::move(options));
    cr_assert(r.ok(), "start: %s", describe(r).c_str());
    return std::move(*r);
}

/// Waits (up to 5 s) until the writer has written `n` events.
void wait_written(const Auditor& a, std::uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (a.written() < n && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
    }
    cr_assert_eq(a.written(), n, "written %llu, want %llu",
                 static_cast<unsigned long long>(a.written()), static_cast<unsigned long long>(n));
}

int unix_listener(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    cr_assert(fd >= 0 && ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::listen(fd, 4) == 0,
              "listen(%s): %s", path.c_str(), std::strerror(errno));
    return fd;
}

/// Accepts one connection, failing the test when none arrives within 2 s.
int accept_one(int listener) {
    pollfd p{listener, POLLIN, 0};
    cr_assert_eq(::poll(&p, 1, 2000), 1, "no connection on the audit socket");
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    cr_assert(fd >= 0, "accept: %s", std::strerror(errno));
    return fd;
}

}  // namespace

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

// ---- the writer and its sinks ----------------------------------------------------------

Test(audit, session_id_is_uuid_v4, .timeout = 20) {
    const std::regex uuid4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
    Auditor::Options o;
    o.stderr_denials = false;
    const auto a = must_start(o);
    const auto b = must_start(o);
    cr_assert(std::regex_match(a->session_id(), uuid4), "%s", a->session_id().c_str());
    cr_assert_neq(a->session_id(), b->session_id());
    o.session_id = "given";
    cr_assert_eq(must_start(o)->session_id(), "given");
}

Test(audit, file_concurrent_records_keep_seq_order, .timeout = 60) {
    const std::string dir = temp_dir();
    Auditor::Options o;
    o.file = dir + "/audit.jsonl";
    o.stderr_denials = false;
    o.session_id = "s-file";
    o.labels = all_labels();
    auto a = must_start(o);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&a, t] {
            for (int i = 0; i < 2500; ++i) {
                (void)a->record(allow_get(t * 2500 + i));
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    a->stop();
    cr_assert_eq(a->recorded(), 10000u);
    cr_assert_eq(a->dropped(), 0u);
    cr_assert_eq(a->written(), 10000u);
    const auto lines = read_lines(*o.file);
    cr_assert_eq(lines.size(), 10000u, "%zu lines", lines.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const ordered_json j = parse(lines[i]);
        cr_assert_eq(j["seq"].get<std::uint64_t>(), i + 1, "line %zu: %s", i, lines[i].c_str());
        cr_assert_eq(j["session_id"], "s-file");
        cr_assert_eq(j["workspace_id"], "ws-1");
    }
    struct stat st {};
    cr_assert_eq(::stat(o.file->c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600u, "mode %o", st.st_mode & 0777);
    std::filesystem::remove_all(dir);
}

// The file is a FIFO whose reader reads nothing until 1000 records are done, with the
// smallest pipe buffer: the writer blocks after a few lines, the 8-slot queue fills, and
// record() must keep returning at once, dropping and counting.
Test(audit, full_queue_drops_without_blocking, .timeout = 60) {
    const std::string dir = temp_dir();
    const std::string fifo = dir + "/audit.fifo";
    cr_assert_eq(::mkfifo(fifo.c_str(), 0600), 0, "mkfifo: %s", std::strerror(errno));
    const int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert(rd >= 0, "open fifo: %s", std::strerror(errno));
    (void)::fcntl(rd, F_SETPIPE_SZ, 4096);
    const int err_out = ::open((dir + "/stderr.txt").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    const int saved = ::dup(STDERR_FILENO);
    cr_assert(err_out >= 0 && saved >= 0 && ::dup2(err_out, STDERR_FILENO) == STDERR_FILENO);
    Auditor::Options o;
    o.file = fifo;
    o.queue_capacity = 8;
    o.stderr_denials = false;
    auto a = must_start(o);
    AuditEvent e = allow_get(0);
    e.http_url += "/" + std::string(600, 'p');  // > 600 bytes a line: ~6 lines fill the pipe
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) {
        (void)a->record(e);
    }
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    cr_assert(elapsed < 2s, "1000 record() calls took %lld ms",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
    const std::uint64_t dropped = a->dropped();
    cr_assert_gt(dropped, 0u);
    cr_assert_eq(a->recorded() + dropped, 1000u);

    (void)::fcntl(rd, F_SETFL, 0);  // blocking reads from here on, until the writer closes
    std::string data;
    std::thread reader([&data, rd] { data = read_all(rd); });
    a->stop();
    reader.join();
    ::close(rd);
    ::dup2(saved, STDERR_FILENO);
    const auto err_lines = read_lines(dir + "/stderr.txt");
    // Said at once (once for the series), and the total at exit.
    const std::string want_first =
        "landjail: audit: the audit queue is full (8 events): events are dropped (and "
        "counted) until the writer catches up";
    const std::string want_err = "landjail: audit: " + std::to_string(dropped) +
                                 " events were dropped because the audit queue was full";
    cr_assert(err_lines.size() == 2 && err_lines[0] == want_first && err_lines[1] == want_err,
              "stderr: %s", err_lines.empty() ? "(empty)" : err_lines.back().c_str());

    std::uint64_t events = 0;
    std::uint64_t reported_drops = 0;
    for (const std::string& line : split_lines(data)) {
        const ordered_json j = parse(line);
        if (j["event"] == "audit_dropped") {
            cr_assert(!j.contains("seq"), "%s", line.c_str());
            reported_drops += j["count"].get<std::uint64_t>();
        } else {
            cr_assert_eq(j["seq"].get<std::uint64_t>(), ++events, "%s", line.c_str());
        }
    }
    cr_assert_eq(events, a->recorded());
    cr_assert_eq(reported_drops, dropped, "audit_dropped counts %llu, dropped %llu",
                 static_cast<unsigned long long>(reported_drops),
                 static_cast<unsigned long long>(dropped));
    cr_assert_eq(a->recorded() + a->dropped(), 1000u);
    std::filesystem::remove_all(dir);
}

Test(audit, stop_flushes_and_later_records_drop, .timeout = 20) {
    const std::string dir = temp_dir();
    Auditor::Options o;
    o.file = dir + "/audit.jsonl";
    o.stderr_denials = false;
    auto a = must_start(o);
    for (int i = 0; i < 500; ++i) {
        cr_assert(a->record(allow_get(i)));
    }
    a->stop();
    cr_assert_eq(read_lines(*o.file).size(), 500u);
    cr_assert_not(a->record(allow_get(0)));
    cr_assert_eq(a->dropped(), 1u);
    a->stop();  // idempotent
    a.reset();  // and the destructor after it
    cr_assert_eq(read_lines(*o.file).size(), 500u);
    std::filesystem::remove_all(dir);
}

Test(audit, file_appends, .timeout = 20) {
    const std::string dir = temp_dir();
    Auditor::Options o;
    o.file = dir + "/audit.jsonl";
    o.stderr_denials = false;
    for (int run = 0; run < 2; ++run) {
        auto a = must_start(o);
        (void)a->record(deny_post());
    }
    cr_assert_eq(read_lines(*o.file).size(), 2u);
    std::filesystem::remove_all(dir);
}

Test(audit, bad_file_path_is_a_start_error) {
    Auditor::Options o;
    o.file = "/nonexistent-lj-audit-dir/sub/audit.jsonl";
    const auto r = Auditor::start(o);
    cr_assert_not(r.ok());
    const std::string what = r.error().what();
    cr_assert(what.find(*o.file) != std::string::npos, "%s", what.c_str());
    cr_assert(contains_any(what, "No such file"), "%s", what.c_str());
}

Test(audit, bad_socket_path_and_capacity_are_start_errors) {
    Auditor::Options o;
    o.socket = "/tmp/" + std::string(200, 's') + ".sock";
    const auto r = Auditor::start(o);
    cr_assert_not(r.ok());
    cr_assert(r.error().what().find(*o.socket) != std::string::npos, "%s",
              r.error().what().c_str());
    Auditor::Options zero;
    zero.queue_capacity = 0;
    const auto z = Auditor::start(zero);
    cr_assert(!z.ok() && contains_any(z.error().what(), "queue_capacity"), "%s",
              describe(z).c_str());
}

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

// landjail's supervisor stores the pid behind a client port; the proxy takes it once.
Test(audit, client_map_store_and_take) {
    const int fd = memfd_create("client-map-test", MFD_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, static_cast<off_t>(lj::proxy::ClientMap::kBytes)), 0);
    void* table =
        mmap(nullptr, lj::proxy::ClientMap::kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert(table != MAP_FAILED);
    auto map = lj::proxy::ClientMap::map(fd);
    cr_assert(map.ok(), "%s", map ? "" : map.error().message.c_str());
    cr_assert(!(*map)->take(40000).has_value(), "an empty slot names nobody");
    lj::proxy::ClientMap::store(table, 40000, getpid());
    lj::proxy::ClientMap::store(table, 65535, 7);
    auto who = (*map)->take(40000);
    cr_assert(who.has_value());
    cr_assert_eq(who->pid, getpid());
    char self[4096] = {};
    cr_assert(readlink("/proc/self/exe", self, sizeof self - 1) > 0);
    cr_assert_str_eq(who->exe.c_str(), self);
    cr_assert(!(*map)->take(40000).has_value(), "taken once");
    cr_assert_eq((*map)->take(65535)->pid, 7, "the last port is a slot too");
    munmap(table, lj::proxy::ClientMap::kBytes);
    close(fd);
}

Test(audit, client_map_rejects_wrong_size) {
    const int fd = memfd_create("client-map-small", MFD_CLOEXEC);
    cr_assert_eq(ftruncate(fd, 4096), 0);
    auto map = lj::proxy::ClientMap::map(fd);
    cr_assert(!map.ok());
    cr_assert(map.error().message.find("262144") != std::string::npos, "%s",
              map.error().message.c_str());
    close(fd);
}
