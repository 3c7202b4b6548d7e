// SPDX-License-Identifier: Apache-2.0
// The HTTP collector sink's refusals (proxy::HttpSink, DESIGN §6, issue 13 item 18): a
// permanent 4xx is set aside, counted and reported, never retried; refusals back off; a 413
// splits the batch.
#include "tests/unit/audit_http_support.hpp"

using namespace lj::test::audit_http_support;

// ---- issue 13 item 18: a permanent refusal is not retried ------------------------------

namespace {

/// Runs `body` with stderr going to `path`; returns its lines.
std::vector<std::string> stderr_of(const std::string& path, const std::function<void()>& body) {
    const int out = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int saved = ::dup(STDERR_FILENO);
    cr_assert(out >= 0 && saved >= 0 && ::dup2(out, STDERR_FILENO) == STDERR_FILENO);
    ::close(out);
    body();
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    return split_lines(file_lines_text(path));
}

}  // namespace

// The collector refuses the first batch with 400 and takes the rest: the refused batch is
// never sent again, it is set aside in DIR/rejected, counted, reported once on stderr with
// the status and the collector's first line, and an audit_dropped event says so in the file.
Test(audit_http, a_permanent_4xx_is_set_aside_not_retried, .timeout = 60) {
    Collector c(0, {400});
    const std::string dir = temp_dir();
    const std::string spool = dir + "/spool";
    std::unique_ptr<Auditor> a;
    const auto said = stderr_of(dir + "/stderr.txt", [&] {
        a = must_start(options(dir, c.url(), spool));
        record(*a, 1, 10);
        cr_assert(eventually([&] { return a->http()->delivered() == 5; }), "delivered %llu",
                  static_cast<unsigned long long>(a->http()->delivered()));
        cr_assert(eventually([&] { return file_lines(dir + "/audit.jsonl").size() >= 11; }),
                  "no audit_dropped event in the file");
        a->stop();
    });
    const auto bodies = c.all_bodies();
    cr_assert(seqs(split_lines(bodies[0])) == one_to(5));
    std::vector<std::uint64_t> sent;  // every request's events: each once
    std::vector<std::string> notices;
    for (const std::string& body : bodies) {
        for (const std::string& line : split_lines(body)) {
            const json j = json::parse(line);
            if (j.contains("seq")) {
                sent.push_back(j["seq"].get<std::uint64_t>());
            } else {
                notices.push_back(line);  // the refusal's audit_dropped, sent after it
            }
        }
    }
    cr_assert(sent == one_to(10), "the refused batch was sent again (%zu requests)", bodies.size());
    cr_assert_eq(notices.size(), 1u);
    cr_assert_eq(a->http()->rejected(), 5u);
    cr_assert_eq(a->http()->dropped(), 0u, "set aside, not lost");
    std::vector<std::string> kept;
    for (const auto& e : fs::directory_iterator(spool + "/rejected")) {
        kept.push_back(e.path().string());
    }
    cr_assert_eq(kept.size(), 1u);
    cr_assert_eq(file_lines_text(kept[0]), bodies[0], "the refused batch, as it was sent");
    const auto lines = file_lines(dir + "/audit.jsonl");
    const json notice = json::parse(lines.back());
    cr_assert(notice["event"] == "audit_dropped" && notice["sink"] == "http" &&
                  notice["reason"] == "rejected" && notice["status"] == 400 && notice["count"] == 5,
              "%s", lines.back().c_str());
    std::size_t reports = 0;
    for (const std::string& l : said) {
        if (l.find("HTTP 400") != std::string::npos) {
            ++reports;
            cr_assert(l.find("(\"bad token\")") != std::string::npos &&
                          l.find("not retried") != std::string::npos && l.find(kept[0]) != l.npos,
                      "%s", l.c_str());
        }
    }
    cr_assert_eq(reports, 1u, "one report of the refusal");
    fs::remove_all(dir);
}

// A collector that refuses everything is not hammered: after a refusal, the next request
// waits for the backoff (here 10 s, far longer than the test looks).
Test(audit_http, refusals_back_off, .timeout = 60) {
    Collector c(0, std::vector<int>(100, 403));
    const std::string dir = temp_dir();
    auto o = options(dir, c.url());
    o.http->retry_min = 10s;
    o.http->retry_max = 10s;
    std::unique_ptr<Auditor> a;
    (void)stderr_of(dir + "/stderr.txt", [&] {
        a = must_start(o);
        record(*a, 1, 15);  // three batches, ready at once
        cr_assert(eventually([&] { return a->http()->rejected() == 5; }));
        std::this_thread::sleep_for(500ms);
        cr_assert_eq(c.requests(), 1u, "%zu requests within 0.5 s of a refusal", c.requests());
        a->stop();
    });
    cr_assert_eq(a->http()->rejected(), 5u);
    // The memory spool is lost at exit: the 10 events, and the refusal's audit_dropped line.
    cr_assert_geq(a->http()->dropped(), 10u);
    fs::remove_all(dir);
}

// 413: the batch is split in halves until the collector takes them; nothing is lost and the
// order stays.
Test(audit_http, a_413_splits_the_batch, .timeout = 60) {
    Collector c;
    c.answer_by_body([](const std::string& body) {
        return std::count(body.begin(), body.end(), '\n') > 2 ? 413 : 200;
    });
    const std::string dir = temp_dir();
    auto a = must_start(options(dir, c.url(), dir + "/spool"));
    record(*a, 1, 5);
    cr_assert(eventually([&] { return a->http()->delivered() == 5; }), "delivered %llu",
              static_cast<unsigned long long>(a->http()->delivered()));
    a->stop();
    cr_assert(seqs(c.lines()) == one_to(5), "order or loss");
    cr_assert_eq(a->http()->rejected() + a->http()->dropped(), 0u);
    cr_assert_eq(spool_files(dir + "/spool"), 0u);
    fs::remove_all(dir);
}
