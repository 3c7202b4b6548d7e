// SPDX-License-Identifier: Apache-2.0
// The audit trail's writer (proxy::Auditor, DESIGN §6): session ids, concurrent records keep
// seq order in the file, a full queue drops (and says so in the stream) instead of blocking,
// stop() flushes, the file appends, and bad sink options are start errors.
#include "tests/unit/audit_support.hpp"

using namespace lj::test::audit_support;

// ---- the writer ------------------------------------------------------------------------

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
