// SPDX-License-Identifier: Apache-2.0
// The audit trail's HTTP collector sink (proxy::HttpSink, DESIGN §6) against a tiny collector
// on 127.0.0.1 (a thread with a raw socket): batches of at most batch_size lines, sent after
// flush_interval; a collector that is down, then up, or answers 500, receives every event
// once and in seq order; one that never answers does not slow the file sink; the spool
// survives a restart, is bounded, and an uncreatable spool directory is a start-up error.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/audit/auditor.hpp"
#include "tests/unit/lj_test.hpp"

using lj::proxy::AuditEvent;
using lj::proxy::Auditor;
using lj::proxy::HttpSink;
using lj::test::describe;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using lj::test::split_lines;

using Steady = std::chrono::steady_clock;

int bound_socket(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0 && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                  ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0,
              "bind(127.0.0.1:%u): %s", port, std::strerror(errno));
    return fd;
}

std::uint16_t port_of(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    cr_assert(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    return ntohs(a.sin_port);
}

/// A port where nobody listens (connect: ECONNREFUSED) until release(): bound, not listening.
struct DownPort {
    int fd = bound_socket(0);
    std::uint16_t port = port_of(fd);
    void release() {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }
    ~DownPort() { release(); }
};

/// The collector: answers each POST with the next status of `statuses` (200 once they are
/// used up) and keeps the bodies it answered 2xx; with `answer` false it never accepts, so
/// that requests hang (the kernel completes the handshake from the backlog).
class Collector {
  public:
    explicit Collector(std::uint16_t port = 0, std::vector<int> statuses = {}, bool answer = true)
        : fd_(bound_socket(port)), statuses_(std::move(statuses)) {
        cr_assert(::listen(fd_, 64) == 0, "listen: %s", std::strerror(errno));
        if (answer) {
            thread_ = std::thread([this] { serve(); });
        }
    }
    ~Collector() {
        stop_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
        ::close(fd_);
    }
    Collector(const Collector&) = delete;
    Collector& operator=(const Collector&) = delete;

    std::uint16_t port() const { return port_of(fd_); }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/ingest"; }
    std::vector<std::string> bodies() const {
        std::lock_guard lock(mutex_);
        return bodies_;
    }
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        for (const std::string& b : bodies()) {
            for (std::string& l : split_lines(b)) {
                out.push_back(std::move(l));
            }
        }
        return out;
    }
    std::size_t requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    std::string headers() const {
        std::lock_guard lock(mutex_);
        return last_headers_;
    }

  private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) != 1) {
                continue;
            }
            const int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn >= 0) {
                handle(conn);
                ::close(conn);
            }
        }
    }

    /// One request per connection (the reply says Connection: close).
    void handle(int conn) {
        std::string data;
        std::size_t head_end = std::string::npos;
        std::size_t length = 0;
        while (head_end == std::string::npos || data.size() < head_end + 4 + length) {
            pollfd p{conn, POLLIN, 0};
            char buf[65536];
            const ssize_t n = ::poll(&p, 1, 2000) == 1 ? ::read(conn, buf, sizeof buf) : -1;
            if (n <= 0) {
                return;
            }
            data.append(buf, static_cast<std::size_t>(n));
            if (head_end == std::string::npos && (head_end = data.find("\r\n\r\n")) != data.npos) {
                length = content_length(data.substr(0, head_end));
            }
        }
        const int status = next_status(data.substr(0, head_end), data.substr(head_end + 4));
        const std::string body = status >= 400 ? reply_body_ : "";
        const std::string reply = "HTTP/1.1 " + std::to_string(status) +
                                  " X\r\nContent-Length: " + std::to_string(body.size()) +
                                  "\r\nConnection: close\r\n\r\n" + body;
        (void)!::write(conn, reply.data(), reply.size());
    }

    static std::size_t content_length(const std::string& head) {
        std::string lower = head;
        for (char& c : lower) {
            c = lj::test::lower(c);
        }
        const std::size_t at = lower.find("\r\ncontent-length:");
        return at == std::string::npos ? 0 : std::stoul(lower.substr(at + 17));
    }

    int next_status(const std::string& head, const std::string& body) {
        std::lock_guard lock(mutex_);
        const int status = status_of                      ? status_of(body)
                           : requests_ < statuses_.size() ? statuses_[requests_]
                                                          : 200;
        ++requests_;
        last_headers_ = head;
        all_bodies_.push_back(body);
        if (status >= 200 && status < 300) {
            bodies_.push_back(body);
        }
        return status;
    }

  public:
    /// From now on, the status for a request is `f(body)`.
    void answer_by_body(std::function<int(const std::string&)> f) {
        std::lock_guard lock(mutex_);
        status_of = std::move(f);
    }
    /// Every request's body, whatever the answer.
    std::vector<std::string> all_bodies() const {
        std::lock_guard lock(mutex_);
        return all_bodies_;
    }

  private:
    std::function<int(const std::string&)> status_of;
    std::string reply_body_ = "bad token\nsee the collector's log";  ///< for 4xx and 5xx
    int fd_;
    std::vector<int> statuses_;
    std::vector<std::string> all_bodies_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::vector<std::string> bodies_;
    std::size_t requests_ = 0;
    std::string last_headers_;
    std::thread thread_;
};

std::string temp_dir() {
    char templ[] = "/tmp/lj-http-XXXXXX";
    cr_assert(::mkdtemp(templ) != nullptr, "mkdtemp: %s", std::strerror(errno));
    return templ;
}

AuditEvent event(int i) {
    AuditEvent e;
    e.allowed = i % 3 != 0;
    e.http_method = "GET";
    e.http_url = "https://api.example.com/v1/items/" + std::to_string(i);
    e.host = "api.example.com";
    e.reason = e.allowed ? "allow_rule_matched" : "no_rule_matched";
    return e;
}

/// File sink in `dir`, no stderr lines, and an HTTP sink to `url` with short test timings.
Auditor::Options options(const std::string& dir, const std::string& url,
                         std::optional<std::string> spool = std::nullopt) {
    Auditor::Options o;
    o.file = dir + "/audit.jsonl";
    o.stderr_denials = false;
    HttpSink::Options h;
    h.url = url;
    h.batch_size = 5;
    h.flush_interval = 20ms;
    h.spool.dir = std::move(spool);
    h.retry_min = 20ms;
    h.retry_max = 100ms;
    h.grace = 300ms;
    o.http = h;
    return o;
}

std::unique_ptr<Auditor> must_start(Auditor::Options o) {
    auto r = Auditor::start(std::move(o));
    cr_assert(r.ok(), "start: %s", describe(r).c_str());
    return std::move(*r);
}

void record(Auditor& a, int from, int to) {
    for (int i = from; i <= to; ++i) {
        cr_assert(a.record(event(i)), "record %d dropped", i);
    }
}

/// Waits up to `limit` for `done`; false when it did not happen.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = Steady::now() + limit;
    while (!done()) {
        if (Steady::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

/// The seq numbers of `lines` (JSON lines of one session).
std::vector<std::uint64_t> seqs(const std::vector<std::string>& lines) {
    std::vector<std::uint64_t> out;
    for (const std::string& l : lines) {
        out.push_back(json::parse(l).at("seq").get<std::uint64_t>());
    }
    return out;
}

std::vector<std::uint64_t> one_to(std::uint64_t n) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t i = 1; i <= n; ++i) {
        out.push_back(i);
    }
    return out;
}

std::string file_lines_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> file_lines(const std::string& path) {
    return split_lines(file_lines_text(path));
}

/// Batch files (*.ndjson) under `dir`, recursively, and their total size.
std::size_t spool_files(const std::string& dir, std::uintmax_t* bytes = nullptr) {
    std::size_t n = 0;
    std::uintmax_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (e.is_regular_file() && e.path().extension() == ".ndjson") {
            ++n;
            total += e.file_size();
        }
    }
    if (bytes != nullptr) {
        *bytes = total;
    }
    return n;
}

std::size_t entries(const std::string& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) {
        ++n;
    }
    return n;
}

}  // namespace

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
