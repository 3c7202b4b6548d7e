// SPDX-License-Identifier: Apache-2.0
// The HTTP collector sink's spool (proxy::HttpSink, DESIGN §6, issue 13 item 8): it survives a
// restart and is sent first, is bounded, a few batches are kept in memory without a
// directory, an uncreatable spool directory is a start-up error, and every line is in the
// spool before the sink has taken it.
#include "tests/unit/audit_http_support.hpp"

using namespace lj::test::audit_http_support;

Test(audit_http, the_spool_is_sent_first_by_the_next_run) {
    DownPort down;
    const std::string dir = temp_dir();
    const std::string spool = dir + "/spool";
    const std::string url = "http://127.0.0.1:" + std::to_string(down.port) + "/";
    std::string first_session;
    {
        auto a = must_start(options(dir, url, spool));
        first_session = a->session_id();
        record(*a, 1, 7);
        a->stop();
        cr_assert_eq(a->http()->spooled(), 7u);
    }
    cr_assert_eq(spool_files(spool), 2u, "7 events in batches of 5: 2 files");
    down.release();
    Collector c(down.port);
    auto b = must_start(options(dir, url, spool));
    record(*b, 1, 3);
    cr_assert(eventually([&] { return c.lines().size() >= 10; }), "collector has %zu lines",
              c.lines().size());
    b->stop();
    const std::vector<std::string> lines = c.lines();
    cr_assert_eq(lines.size(), 10u);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const json j = json::parse(lines[i]);
        const bool old = i < 7;
        cr_expect_eq(j["session_id"], old ? first_session : b->session_id(), "line %zu", i);
        cr_expect_eq(j["seq"].get<std::size_t>(), old ? i + 1 : i - 6, "line %zu", i);
    }
    cr_expect_eq(entries(spool), 0u, "both runs' spool directories are removed");
}

Test(audit_http, the_spool_is_bounded) {
    DownPort down;
    const std::string dir = temp_dir();
    const std::string spool = dir + "/spool";
    auto o = options(dir, "http://127.0.0.1:" + std::to_string(down.port) + "/", spool);
    o.http->spool.max_bytes = 2000;
    auto a = must_start(o);
    record(*a, 1, 50);
    a->stop();
    std::uintmax_t bytes = 0;
    spool_files(spool, &bytes);
    const HttpSink& h = *a->http();
    cr_expect(bytes <= 2000 && bytes > 1000, "%ju bytes spooled", bytes);
    cr_expect(h.dropped() > 0, "lines beyond the bound are dropped");
    cr_expect_eq(h.spooled() + h.dropped(), 50u, "spooled %llu + dropped %llu",
                 static_cast<unsigned long long>(h.spooled()),
                 static_cast<unsigned long long>(h.dropped()));
}

Test(audit_http, without_a_directory_a_few_batches_are_kept_in_memory) {
    DownPort down;
    const std::string dir = temp_dir();
    auto o = options(dir, "http://127.0.0.1:" + std::to_string(down.port) + "/");
    o.http->spool.max_memory_lines = 10;
    auto a = must_start(o);
    record(*a, 1, 30);
    cr_assert(eventually([&] { return a->http()->spooled() + a->http()->dropped() == 30; }));
    cr_expect_eq(a->http()->spooled(), 10u, "2 batches of 5");
    a->stop();
    cr_expect_eq(a->http()->dropped(), 30u, "memory is lost at exit");
}

Test(audit_http, an_uncreatable_spool_dir_is_a_startup_error) {
    const std::string dir = temp_dir();
    const std::string file = dir + "/file";
    std::ofstream(file) << "x";
    auto r = Auditor::start(options(dir, "http://127.0.0.1:9/", file + "/spool"));
    cr_assert(!r.ok());
    const std::string msg = r.error().what();
    cr_expect(msg.find("audit.http.spool_dir") != std::string::npos &&
                  msg.find(file + "/spool") != std::string::npos,
              "%s", msg.c_str());
}

// ---- issue 13 item 8: a line is in the spool before the sink has taken it ---------------

namespace {

/// Lines in the batch files under `dir` (recursively).
std::size_t spooled_lines(const std::string& dir) {
    std::size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (e.is_regular_file() && e.path().extension() == ".ndjson") {
            n += split_lines(file_lines_text(e.path().string())).size();
        }
    }
    return n;
}

}  // namespace

// The collector hangs on the first batch: every line, the one in flight included, is in
// the spool's files at once. A copy of the spool taken now (what a kill -9 leaves) is
// delivered by the next run, every event once.
Test(audit_http, every_line_is_spooled_before_it_is_sent, .timeout = 60) {
    Collector hung(0, {}, false);
    const std::string dir = temp_dir();
    const std::string spool = dir + "/spool";
    auto a = must_start(options(dir, hung.url(), spool));
    record(*a, 1, 12);
    cr_assert(eventually([&] { return a->http()->requests() >= 1; }), "no request made");
    cr_assert(eventually([&] { return a->http()->spooled() == 12; }, 5s),
              "spooled %llu of 12 while the first batch is in flight",
              static_cast<unsigned long long>(a->http()->spooled()));
    cr_assert_eq(spooled_lines(spool), 12u, "the batch files hold every line");
    const std::string copy = dir + "/after-crash";
    fs::copy(spool, copy, fs::copy_options::recursive);  // the locks are not held in the copy
    Collector c;
    fs::create_directory(dir + "/b");
    auto b = must_start(options(dir + "/b", c.url(), copy));
    cr_assert(eventually([&] { return c.lines().size() >= 12; }), "collector has %zu lines",
              c.lines().size());
    b->stop();
    const auto got = c.lines();
    cr_assert(seqs(got) == one_to(12), "each event once, in order (%zu lines)", got.size());
    cr_assert_eq(json::parse(got[0])["session_id"], a->session_id());
    a->stop();
    fs::remove_all(dir);
}
