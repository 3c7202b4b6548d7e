// SPDX-License-Identifier: Apache-2.0
// The HTTP collector sink: the spool, filled by the Auditor's writer (push), and one sender
// thread that owns a libcurl easy handle. The sender's loop: wait until the spool's oldest
// batch is ready (batch_size lines, or fewer once its first line has waited flush_interval;
// at once when adopted from an earlier run or when stopping) and the backoff allows, post
// it, then remove it (2xx), split it (413), set it aside (another 4xx) or keep it for a
// retry.
#include "proxy/audit/http_sink.hpp"

#include <curl/curl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <iterator>
#include <mutex>
#include <system_error>
#include <utility>

namespace lj::proxy {
namespace {

using Steady = std::chrono::steady_clock;

constexpr char kSystemCaDir[] = "/etc/ssl/certs";  // Debian's hashed CA directory

void report(const std::string& message) {
    const std::string line = "landjail: audit: http: " + message + "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size());
}

/// libcurl may raise SIGPIPE on a socket the collector closed (CURLOPT_NOSIGNAL leaves it to
/// us); blocked in the sender thread, it can never kill the proxy.
void block_sigpipe() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

/// curl_global_init once per process (it is not thread-safe in every libcurl build).
Status init_curl() {
    static std::once_flag once;
    static CURLcode rc = CURLE_OK;
    std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (rc != CURLE_OK) {
        return make_error(std::string("audit.http: libcurl: ") + curl_easy_strerror(rc));
    }
    return {};
}

/// The URL as messages show it: parsed by libcurl, without user name and password.
Result<std::string> shown_url(const std::string& url) {
    const std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), curl_url_cleanup);
    if (!u) {
        return make_error("audit.http: out of memory");
    }
    if (const CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0);
        rc != CURLUE_OK) {
        return make_error(std::string("audit.http.url: not a valid URL: ") + curl_url_strerror(rc));
    }
    (void)curl_url_set(u.get(), CURLUPART_USER, nullptr, 0);
    (void)curl_url_set(u.get(), CURLUPART_PASSWORD, nullptr, 0);
    char* text = nullptr;
    if (curl_url_get(u.get(), CURLUPART_URL, &text, 0) != CURLUE_OK || text == nullptr) {
        return make_error("audit.http.url: not a valid URL");
    }
    std::string out = text;
    curl_free(text);
    return out;
}

constexpr std::size_t kReplyKept = 512;  // bytes of a reply body kept for messages

/// Keeps the start of the collector's reply (a std::string), for the message that reports a
/// refusal; the rest is discarded.
std::size_t keep_reply(char* data, std::size_t size, std::size_t count, void* out) {
    auto& reply = *static_cast<std::string*>(out);
    const std::size_t n = size * count;
    if (reply.size() < kReplyKept) {
        reply.append(data, std::min(n, kReplyKept - reply.size()));
    }
    return n;
}

/// The first line of a reply body, printable ASCII only, at most 200 characters.
std::string first_line(const std::string& body) {
    std::string out;
    for (const char c : body.substr(0, body.find_first_of("\r\n"))) {
        out += c >= 0x20 && c < 0x7F ? c : '?';
    }
    return out.size() > 200 ? out.substr(0, 200) + "..." : out;
}

bool same_cause(const HttpSink::Loss& a, const HttpSink::Loss& b) {
    return a.reason == b.reason && a.err == b.err && a.status == b.status;
}

}  // namespace

struct HttpSink::Curl {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy{curl_easy_init(), curl_easy_cleanup};
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers{nullptr,
                                                                        curl_slist_free_all};
    std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi{curl_multi_init(),
                                                                curl_multi_cleanup};
    char error[CURL_ERROR_SIZE] = {};
    std::string reply;  ///< the start of the last reply's body

    ~Curl() {
        easy.reset();  // before the multi handle that shares its connection cache
    }
    bool add_header(const char* h) {
        curl_slist* next = curl_slist_append(headers.get(), h);
        if (next != nullptr) {
            (void)headers.release();
            headers.reset(next);
        }
        return next != nullptr;
    }

    /// Everything but the body and the per-request timeout. Returns the first failure.
    CURLcode setup(const HttpSink::Options& o) {
        CURL* h = easy.get();
        if (h == nullptr || !multi || !add_header("Content-Type: application/x-ndjson") ||
            !add_header("Expect:")) {  // no 100-continue round trip before each body
            return CURLE_OUT_OF_MEMORY;
        }
        const long connect_ms = o.connect_timeout.count();
        const long total_ms = o.request_timeout.count();
        const CURLcode rcs[] = {
            curl_easy_setopt(h, CURLOPT_URL, o.url.c_str()),
            curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"),
            curl_easy_setopt(h, CURLOPT_PROXY, ""),  // never HTTP(S)_PROXY from the environment
            curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L),
            curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms),
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms),
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()),
            curl_easy_setopt(h, CURLOPT_USERAGENT, "landjail/" LJ_VERSION),
            curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error),
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_reply),
            curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply),
            curl_easy_setopt(h, CURLOPT_POST, 1L),
        };
        for (const CURLcode rc : rcs) {
            if (rc != CURLE_OK) {
                return rc;
            }
        }
        return o.extra_ca ? trust(*o.extra_ca) : CURLE_OK;
    }

    /// The system store and `ca_file`: with OpenSSL, CAINFO and CAPATH are both loaded.
    CURLcode trust(const std::string& ca_file) {
        const CURLcode rc = curl_easy_setopt(easy.get(), CURLOPT_CAINFO, ca_file.c_str());
        return rc != CURLE_OK ? rc : curl_easy_setopt(easy.get(), CURLOPT_CAPATH, kSystemCaDir);
    }
};

Result<std::unique_ptr<HttpSink>> HttpSink::start(Options options) {
    if (options.batch_size == 0 || options.flush_interval.count() <= 0) {
        return make_error("audit.http: batch_size and flush_interval must be > 0");
    }
    if (auto init = init_curl(); !init) {
        return init.error();
    }
    auto shown = shown_url(options.url);
    if (!shown) {
        return shown.error();
    }
    options.spool.batch_size = options.batch_size;
    std::unique_ptr<HttpSink> self(new HttpSink(std::move(options)));
    self->shown_url_ = std::move(*shown);
    if (const CURLcode rc = self->curl_->setup(self->options_); rc != CURLE_OK) {
        return make_error(std::string("audit.http: libcurl: ") + curl_easy_strerror(rc));
    }
    auto spool = Spool::open(self->options_.spool);
    if (!spool) {
        return spool.error();
    }
    self->spool_ = std::move(*spool);
    try {
        self->sender_ = std::thread(&HttpSink::run, self.get());
    } catch (const std::system_error& e) {
        return make_error(std::string("audit.http: cannot start the sender thread: ") + e.what());
    }
    return self;
}

HttpSink::HttpSink(Options options)
    : options_(std::move(options)), curl_(std::make_unique<Curl>()) {}

HttpSink::~HttpSink() {
    stop();
}

std::size_t HttpSink::push(std::string_view lines, bool counted) {
    std::string report_text;
    std::size_t lost = 0;
    try {
        std::lock_guard lock(mutex_);
        Spool::Appended got;
        if (stopping_) {
            got.full = static_cast<std::size_t>(std::count(lines.begin(), lines.end(), '\n'));
        } else {
            got = spool_->append(lines);
        }
        lost = got.full + got.failed;
        if (counted && got.full > 0) {
            add_loss(Loss{"spool_full", 0, 0, got.full});
        }
        if (counted && got.failed > 0) {
            add_loss(Loss{"write_failed", got.err, 0, got.failed});
        }
        if (lost == 0) {
            drop_reported_ = false;
        } else if (got.full > 0 && !std::exchange(drop_reported_, true)) {
            report_text = "the spool for " + shown_url_ + " is full; events are dropped";
        }
    } catch (const std::exception&) {  // bad_alloc: counted as lost
        lost = static_cast<std::size_t>(std::count(lines.begin(), lines.end(), '\n'));
        std::lock_guard lock(mutex_);
        if (counted) {
            add_loss(Loss{"write_failed", ENOMEM, 0, lost});
        }
    }
    wake_.notify_one();
    if (!report_text.empty()) {
        report(report_text);  // a failed write was reported by the spool itself
    }
    return lost;
}

/// Counts a loss (under mutex_) and keeps it for take_losses().
void HttpSink::add_loss(const Loss& loss) {
    if (loss.reason != "rejected") {
        dropped_ += loss.count;
    }
    for (Loss& l : losses_) {
        if (same_cause(l, loss)) {
            l.count += loss.count;
            return;
        }
    }
    losses_.push_back(loss);
}

std::vector<HttpSink::Loss> HttpSink::take_losses() {
    std::lock_guard lock(mutex_);
    return std::exchange(losses_, {});
}

void HttpSink::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
        deadline_ = Steady::now() + options_.grace;
    }
    wake_.notify_all();
    (void)curl_multi_wakeup(curl_->multi.get());  // a request in flight checks the deadline
    if (sender_.joinable()) {
        sender_.join();
    }
    std::lock_guard lock(mutex_);
    if (spool_) {  // null when start() failed to open it
        kept_ = spool_->on_disk() ? spool_->events() : 0;
        spool_.reset();  // removes this run's spool directory when it is empty
    }
}

std::uint64_t HttpSink::delivered() const {
    std::lock_guard lock(mutex_);
    return delivered_;
}

std::uint64_t HttpSink::dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
}

std::uint64_t HttpSink::rejected() const {
    std::lock_guard lock(mutex_);
    return rejected_;
}

std::uint64_t HttpSink::spooled() const {
    std::lock_guard lock(mutex_);
    return spool_ ? spool_->events() : kept_;
}

std::uint64_t HttpSink::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

/// The sender: the spool's oldest batch, once it is ready and the backoff allows, is posted
/// and then removed, moved to `rejected`, split or kept for a retry.
void HttpSink::run() {
    block_sigpipe();
    for (;;) {
        std::optional<Spool::Batch> batch;
        {
            std::unique_lock lock(mutex_);
            if (!wait_for_batch(lock)) {
                break;
            }
            batch = spool_->front();
            if (const std::uint64_t lost = spool_->lost() - spool_lost_seen_; lost > 0) {
                spool_lost_seen_ = spool_->lost();
                add_loss(Loss{"unreadable", 0, 0, lost});  // batch files that could not be read
            }
        }
        if (batch) {
            const Outcome outcome = post(batch->body);
            std::lock_guard lock(mutex_);
            settle(outcome, batch->events);
        }
    }
    report_end();
}

/// Waits (under `lock`) until the oldest batch is ready and the backoff is over; false when
/// the sender is to end (stopping, and nothing more can be delivered).
bool HttpSink::wait_for_batch(std::unique_lock<std::mutex>& lock) {
    for (;;) {
        if (finished()) {
            return false;
        }
        const auto now = Steady::now();
        const auto ready = spool_->ready_at(options_.flush_interval);
        auto until = Steady::time_point::max();
        if (now < retry_at_) {
            until = retry_at_;
        } else if (ready && (stopping_ || *ready <= now)) {
            return true;
        } else if (ready) {
            until = *ready;
        }
        if (stopping_) {
            until = std::min(until, deadline_);
        }
        if (until == Steady::time_point::max()) {
            wake_.wait(lock);
        } else {
            wake_.wait_until(lock, until);
        }
    }
}

/// Stopping, and either everything is delivered or the grace period cannot deliver more.
bool HttpSink::finished() const {
    if (!stopping_) {
        return false;
    }
    if (spool_->empty()) {
        return true;
    }
    return Steady::now() >= deadline_ || retry_at_ >= deadline_;
}

/// What a POST's outcome does to the oldest batch (under mutex_).
void HttpSink::settle(Outcome outcome, std::size_t events) {
    switch (outcome) {
        case Outcome::Delivered:
            spool_->pop();
            delivered_ += events;
            return;
        case Outcome::TooLarge:
            if (spool_->split_front()) {
                return;  // the halves are sent at once: each request is smaller
            }
            reject(events);
            return;
        case Outcome::Rejected:
            reject(events);
            return;
        case Outcome::Retry:
            return;  // failed() has set the backoff
    }
}

/// The collector refused the oldest batch for good: it is set aside (DIR/rejected), counted
/// and reported, and the next request waits for the backoff: a collector that refuses
/// everything is not hammered.
void HttpSink::reject(std::size_t events) {
    const std::string moved = spool_->reject_front();
    rejected_ += events;
    long status = 0;
    (void)curl_easy_getinfo(curl_->easy.get(), CURLINFO_RESPONSE_CODE, &status);
    add_loss(Loss{"rejected", 0, static_cast<int>(status), events});
    if (moved.empty()) {
        dropped_ += events;
    }
    if (!std::exchange(reject_reported_, true)) {
        const std::string line = first_line(curl_->reply);
        report("POST " + shown_url_ + ": the collector refused " + std::to_string(events) +
               " events with HTTP " + std::to_string(status) +
               (line.empty() ? "" : " (\"" + line + "\")") + ": a permanent error, not retried; " +
               (moved.empty() ? std::string("they are dropped") : "they are kept in " + moved) +
               "; further refusals are counted in audit_dropped events");
    }
    back_off();
}

/// One POST. 2xx: delivered; 413: too large; another 4xx but 408 and 429: refused for good;
/// anything else (no answer, 408, 429, 5xx, 1xx, 3xx): retried after the backoff.
HttpSink::Outcome HttpSink::post(const std::string& body) {
    {
        std::lock_guard lock(mutex_);
        ++requests_;
    }
    CURL* h = curl_->easy.get();
    curl_->error[0] = '\0';
    curl_->reply.clear();
    (void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    (void)curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    const auto rc = static_cast<CURLcode>(perform());
    long status = 0;
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        failed(curl_->error[0] != '\0' ? curl_->error : curl_easy_strerror(rc));
        return Outcome::Retry;
    }
    return classify(status);
}

HttpSink::Outcome HttpSink::classify(long status) {
    if (status >= 200 && status <= 299) {
        succeeded();
        return Outcome::Delivered;
    }
    if (status == 413) {
        return Outcome::TooLarge;
    }
    if (status >= 400 && status <= 499 && status != 408 && status != 429) {
        return Outcome::Rejected;
    }
    failed("the collector answered HTTP " + std::to_string(status));
    return Outcome::Retry;
}

/// Runs the transfer to its end, or until the grace period of stop() is over.
int HttpSink::perform() {
    CURLM* multi = curl_->multi.get();
    if (curl_multi_add_handle(multi, curl_->easy.get()) != CURLM_OK) {
        return CURLE_OUT_OF_MEMORY;
    }
    CURLcode result = CURLE_OK;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
        if (running == 0) {
            int left = 0;
            const CURLMsg* msg = curl_multi_info_read(multi, &left);
            result =
                msg != nullptr && msg->msg == CURLMSG_DONE ? msg->data.result : CURLE_RECV_ERROR;
            break;
        }
        const auto wait = poll_interval();
        if (wait.count() <= 0) {
            result = CURLE_OPERATION_TIMEDOUT;
            std::snprintf(curl_->error, sizeof curl_->error, "stopped: the grace period is over");
            break;
        }
        (void)curl_multi_poll(multi, nullptr, 0, static_cast<int>(wait.count()), nullptr);
    }
    (void)curl_multi_remove_handle(multi, curl_->easy.get());
    return result;
}

/// How long the next curl_multi_poll() may sleep: 1 s, or what is left of the grace period
/// (0: it is over).
std::chrono::milliseconds HttpSink::poll_interval() const {
    const std::chrono::milliseconds most(1000);
    std::lock_guard lock(mutex_);
    if (!stopping_) {
        return most;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Steady::now());
    return std::clamp(left, std::chrono::milliseconds(0), most);
}

void HttpSink::succeeded() {
    if (failing_ || reject_reported_) {
        report("the collector at " + shown_url_ + " accepts events again");
    }
    failing_ = false;
    reject_reported_ = false;
    std::lock_guard lock(mutex_);
    backoff_ = std::chrono::milliseconds(0);
    retry_at_ = {};
}

/// Reports the first failure of an outage, and backs off.
void HttpSink::failed(const std::string& why) {
    if (!failing_) {
        bool stopping = false;
        {
            std::lock_guard lock(mutex_);
            stopping = stopping_;
        }
        report("POST " + shown_url_ + ": " + why + "; keeping events " +
               (spool_->on_disk() ? "in " + spool_->run_dir() : std::string("in memory")) +
               (stopping ? "" : " and retrying"));
    }
    failing_ = true;
    std::lock_guard lock(mutex_);
    back_off();
}

/// The next request waits retry_min, doubling to retry_max while failures go on (under
/// mutex_).
void HttpSink::back_off() {
    backoff_ =
        backoff_.count() == 0 ? options_.retry_min : std::min(2 * backoff_, options_.retry_max);
    retry_at_ = Steady::now() + backoff_;
}

void HttpSink::report_end() {
    std::uint64_t kept = 0;
    std::uint64_t lost = 0;
    std::uint64_t refused = 0;
    std::string where;
    {
        std::lock_guard lock(mutex_);
        kept = spool_->events();
        if (!spool_->on_disk()) {
            dropped_ += kept;  // a memory spool ends with the process
            kept = 0;
        }
        lost = dropped_;
        refused = rejected_;
        where = spool_->run_dir();
    }
    if (refused > 0) {
        report(std::to_string(refused) + " events were refused by " + shown_url_ +
               (spool_->on_disk() ? " (kept in the spool's rejected directory)" : ""));
    }
    if (kept > 0) {
        report(std::to_string(kept) + " events not delivered to " + shown_url_ + " are kept in " +
               where + " for the next run");
    }
    if (lost > 0) {
        report(std::to_string(lost) + " events were not delivered to " + shown_url_ +
               " and are lost");
    }
}

HttpSink::Options http_sink_options(const policy::Settings& s,
                                    const std::optional<std::string>& extra_ca) {
    const policy::HttpSinkConfig& c = *s.audit.http;
    HttpSink::Options o;
    o.url = c.url;
    o.batch_size = static_cast<std::size_t>(c.batch_size);
    o.flush_interval = std::chrono::milliseconds(c.flush_interval_ms);
    if (!c.spool_dir.empty()) {
        o.spool.dir = c.spool_dir;
    } else if (s.log_dir) {
        o.spool.dir = s.log_dir->value + "/audit-spool";
        o.spool.key = "audit.http.spool_dir (default LOG_DIR/audit-spool)";
    }
    o.extra_ca = extra_ca;
    if (!extra_ca && s.tls.upstream_ca) {
        o.extra_ca = s.tls.upstream_ca->value;
    }
    return o;
}

}  // namespace lj::proxy
