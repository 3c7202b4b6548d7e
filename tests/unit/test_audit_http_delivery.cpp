// SPDX-License-Identifier: Apache-2.0
// The audit trail's HTTP collector sink (proxy::HttpSink, DESIGN §6), delivery: batches of at
// most batch_size lines, sent after flush_interval; a collector that is down, then up, or
// answers 500, receives every event once and in seq order; one that never answers does not
// slow the file sink.
#include "tests/unit/audit_http_support.hpp"

using namespace lj::test::audit_http_support;

Test(audit_http, batches_hold_at_most_batch_size_lines_as_in_the_file) {
    // The proxy's own environment must not send the collector's traffic to a proxy.
    ::setenv("http_proxy", "http://127.0.0.1:9", 1);
    ::setenv("HTTP_PROXY", "http://127.0.0.1:9", 1);
    Collector c;
    const std::string dir = temp_dir();
    auto o = options(dir, c.url());
    o.http->batch_size = 10;
    o.http->flush_interval = 300ms;
    auto a = must_start(o);
    record(*a, 1, 35);
    cr_assert(eventually([&] { return c.lines().size() >= 35; }), "collector has %zu lines",
              c.lines().size());
    a->stop();
    std::vector<std::size_t> sizes;
    for (const std::string& b : c.bodies()) {
        sizes.push_back(split_lines(b).size());
    }
    cr_expect_eq(sizes.size(), 4u, "%zu requests", sizes.size());
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        cr_expect_eq(sizes[i], i < 3 ? 10u : 5u, "request %zu had %zu lines", i, sizes[i]);
    }
    cr_expect(c.lines() == file_lines(dir + "/audit.jsonl"), "collector lines != file lines");
    cr_expect(lj::test::contains_ci(c.headers(), "content-type: application/x-ndjson"), "%s",
              c.headers().c_str());
    cr_expect(lj::test::contains_ci(c.headers(), "POST /ingest HTTP/1.1"), "%s",
              c.headers().c_str());
}

Test(audit_http, a_partial_batch_waits_for_flush_interval) {
    Collector c;
    const std::string dir = temp_dir();
    auto o = options(dir, c.url());
    o.http->batch_size = 100;
    o.http->flush_interval = 400ms;
    auto a = must_start(o);
    const auto t0 = Steady::now();
    record(*a, 1, 3);
    cr_assert(eventually([&] { return c.lines().size() >= 3; }));
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t0);
    cr_expect(waited >= 350ms && waited < 2000ms, "sent after %lld ms, want ~400",
              static_cast<long long>(waited.count()));
    cr_expect_eq(c.requests(), 1u);
    cr_expect(seqs(c.lines()) == one_to(3));
}

Test(audit_http, a_collector_down_at_first_gets_everything_once_in_order) {
    DownPort down;
    const std::string dir = temp_dir();
    const std::string spool = dir + "/spool";
    auto a = must_start(options(dir, "http://127.0.0.1:" + std::to_string(down.port) + "/", spool));
    record(*a, 1, 23);
    cr_assert(eventually([&] { return a->http()->spooled() == 23; }), "spooled %llu",
              static_cast<unsigned long long>(a->http()->spooled()));
    cr_expect_eq(spool_files(spool), 5u, "23 events in batches of 5");
    cr_expect_eq(::access(spool.c_str(), F_OK), 0);
    struct stat st {};
    cr_expect(::stat(spool.c_str(), &st) == 0 && (st.st_mode & 0777) == 0700, "mode %o",
              st.st_mode & 0777);
    down.release();
    Collector c(down.port);
    record(*a, 24, 30);  // after the spool, in order
    cr_assert(eventually([&] { return a->http()->delivered() == 30; }), "delivered %llu",
              static_cast<unsigned long long>(a->http()->delivered()));
    cr_expect(seqs(c.lines()) == one_to(30), "seq order or duplicates");
    cr_expect_eq(spool_files(spool), 0u, "the spool is emptied");
    a->stop();
    cr_expect_eq(entries(spool), 0u, "the run's spool directory is removed");
    cr_expect_eq(a->http()->dropped(), 0u);
}

Test(audit_http, a_500_is_retried_until_200) {
    Collector c(0, {500, 503});
    const std::string dir = temp_dir();
    auto a = must_start(options(dir, c.url()));  // no spool directory: kept in memory
    record(*a, 1, 12);
    cr_assert(eventually([&] { return a->http()->delivered() == 12; }), "delivered %llu",
              static_cast<unsigned long long>(a->http()->delivered()));
    cr_expect(seqs(c.lines()) == one_to(12), "seq order or duplicates");
    cr_expect_geq(c.requests(), 5u, "2 refused + 3 accepted batches");
    a->stop();
    cr_expect_eq(a->http()->dropped(), 0u);
}

/// Seconds until `n` events recorded in a loop reach the file of `a`.
double time_to_file(Auditor& a, std::uint64_t n) {
    const std::uint64_t target = a.recorded() + n;
    const auto t0 = Steady::now();
    record(a, 1, static_cast<int>(n));
    cr_assert(eventually([&] { return a.written() == target; }, 5s), "written %llu of %llu",
              static_cast<unsigned long long>(a.written()),
              static_cast<unsigned long long>(target));
    return std::chrono::duration<double>(Steady::now() - t0).count();
}

Test(audit_http, a_stuck_collector_does_not_slow_the_file_sink) {
    const std::uint64_t n = 20000;
    const std::string base_dir = temp_dir();
    Auditor::Options plain;
    plain.file = base_dir + "/audit.jsonl";
    plain.stderr_denials = false;
    auto base = must_start(plain);
    const double base_secs = time_to_file(*base, n);
    base->stop();
    Collector hung(0, {}, false);
    const std::string dir = temp_dir();
    auto o = options(dir, hung.url(), dir + "/spool");
    o.http->batch_size = 100;
    auto a = must_start(o);
    cr_assert(a->record(event(0)));
    cr_assert(eventually([&] { return a->http()->requests() >= 1; }), "no request made");
    const double secs = time_to_file(*a, n);
    cr_log_info(
        "%llu events reached the file in %.3f s (%.0f/s) while the collector hung; "
        "%.3f s (%.0f/s) without an HTTP sink",
        static_cast<unsigned long long>(n), secs, static_cast<double>(n) / secs, base_secs,
        static_cast<double>(n) / base_secs);
    cr_expect(secs < 3 * base_secs + 0.5, "%.3f s with the stuck collector, %.3f s without", secs,
              base_secs);
    cr_expect_eq(a->http()->delivered(), 0u, "the collector never answered");
    cr_expect_eq(a->http()->requests(), 1u, "still in the first request");
    const auto s0 = Steady::now();
    a->stop();
    const auto stopping = Steady::now() - s0;
    cr_expect(stopping < 2s, "stop() took %lld ms (grace 300 ms)",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(stopping).count()));
    cr_expect_eq(a->http()->spooled(), n + 1, "everything waits in the spool");
    cr_expect_eq(a->http()->dropped(), 0u);
    cr_expect_eq(file_lines(dir + "/audit.jsonl").size(), n + 1);
    fs::remove_all(dir);
    fs::remove_all(base_dir);
}
