// SPDX-License-Identifier: Apache-2.0
// The HTTP collector sink: a bounded queue filled by the Auditor's writer, and one sender
// thread that owns a libcurl easy handle and the spool. The sender's loop: while the spool
// holds batches (or a retry is pending), new lines join the spool and the oldest batch is
// sent when the backoff allows; otherwise a batch is taken from the queue (batch_size lines,
// or fewer once the oldest has waited flush_interval) and posted, going to the spool when
// the collector does not take it.
#include "proxy/audit_http.hpp"

#include <curl/curl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
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
Result<bool> init_curl() {
    static std::once_flag once;
    static CURLcode rc = CURLE_OK;
    std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (rc != CURLE_OK) {
        return make_error(std::string("audit.http: libcurl: ") + curl_easy_strerror(rc));
    }
    return true;
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

/// The collector's reply body is not needed.
std::size_t discard(char*, std::size_t size, std::size_t count, void*) {
    return size * count;
}

}  // namespace

struct HttpSink::Curl {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy{curl_easy_init(), curl_easy_cleanup};
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers{nullptr,
                                                                        curl_slist_free_all};
    std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi{curl_multi_init(),
                                                                curl_multi_cleanup};
    char error[CURL_ERROR_SIZE] = {};

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
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard),
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
    if (options.batch_size == 0 || options.queue_capacity == 0 ||
        options.flush_interval.count() <= 0) {
        return make_error("audit.http: batch_size, queue_capacity and flush_interval must be > 0");
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
    self->spooled_ = self->spool_->events();
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

void HttpSink::push(std::string_view lines) {
    bool report_drop = false;
    const auto count = static_cast<std::size_t>(std::count(lines.begin(), lines.end(), '\n'));
    try {
        std::vector<Line> parsed;
        parsed.reserve(count);
        const auto now = Steady::now();
        for (std::size_t end; (end = lines.find('\n')) != std::string_view::npos;) {
            parsed.push_back(Line{std::string(lines.substr(0, end + 1)), now});
            lines.remove_prefix(end + 1);
        }
        {
            std::lock_guard lock(mutex_);
            const std::size_t room =
                stopping_
                    ? 0
                    : options_.queue_capacity - std::min(options_.queue_capacity, queue_.size());
            const std::size_t take = std::min(room, parsed.size());
            std::move(parsed.begin(), parsed.begin() + static_cast<std::ptrdiff_t>(take),
                      std::back_inserter(queue_));
            dropped_ += parsed.size() - take;
            report_drop = take < parsed.size() && !std::exchange(drop_reported_, true);
        }
        wake_.notify_one();
    } catch (const std::exception&) {  // bad_alloc: counted as lost (at worst, twice)
        std::lock_guard lock(mutex_);
        dropped_ += count;
    }
    if (report_drop) {
        report("the queue for " + shown_url_ + " is full; events are dropped");
    }
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
    spool_.reset();  // removes this run's spool directory when it is empty
}

std::uint64_t HttpSink::delivered() const {
    std::lock_guard lock(mutex_);
    return delivered_;
}

std::uint64_t HttpSink::dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
}

std::uint64_t HttpSink::spooled() const {
    std::lock_guard lock(mutex_);
    return spooled_;
}

std::uint64_t HttpSink::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

void HttpSink::run() {
    block_sigpipe();
    while (!finished()) {
        if (!spool_->empty() || Steady::now() < retry_at_) {
            send_spooled();
        } else {
            send_queued();
        }
    }
    spool_queue();  // what is left waits in the spool for the next run
    report_end();
}

/// Stopping, and either everything is delivered or the grace period cannot deliver more.
bool HttpSink::finished() {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
        return false;
    }
    if (queue_.empty() && spool_->empty()) {
        return true;
    }
    return Steady::now() >= deadline_ || retry_at_ >= deadline_;
}

/// The spool goes first: new lines join it, and its oldest batch is posted once the backoff
/// allows; it leaves the spool only when the collector accepted it.
void HttpSink::send_spooled() {
    spool_queue();
    if (Steady::now() < retry_at_) {
        wait_retry();
        return;
    }
    const auto batch = spool_->front();
    if (batch && post(batch->body, batch->events)) {
        spool_->pop();
    }
    const std::uint64_t lost = spool_->lost() - std::exchange(spool_lost_seen_, spool_->lost());
    std::lock_guard lock(mutex_);
    spooled_ = spool_->events();
    dropped_ += lost;  // batch files that could not be read back
}

void HttpSink::send_queued() {
    const std::vector<std::string> lines = take_batch();
    if (lines.empty()) {
        return;
    }
    std::string body;
    for (const std::string& line : lines) {
        body += line;
    }
    if (!post(body, lines.size())) {
        spool_lines(lines);
    }
}

/// Up to batch_size lines: waits for a first line, then until the batch is full or its
/// oldest line has waited flush_interval (at once when stopping).
std::vector<std::string> HttpSink::take_batch() {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    const auto ready = [this] { return stopping_ || queue_.size() >= options_.batch_size; };
    if (!queue_.empty()) {
        wake_.wait_until(lock, queue_.front().arrived + options_.flush_interval, ready);
    }
    const std::size_t n = std::min(options_.batch_size, queue_.size());
    std::vector<std::string> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(std::move(queue_.front().text));
        queue_.pop_front();
    }
    return out;
}

/// Moves every queued line to the spool, after what it holds.
void HttpSink::spool_queue() {
    std::vector<std::string> lines;
    {
        std::lock_guard lock(mutex_);
        lines.reserve(queue_.size());
        for (Line& l : queue_) {
            lines.push_back(std::move(l.text));
        }
        queue_.clear();
    }
    if (!lines.empty()) {
        spool_lines(lines);
    }
}

void HttpSink::spool_lines(const std::vector<std::string>& lines) {
    const std::size_t lost = spool_->append(lines);
    bool report_drop = false;
    {
        std::lock_guard lock(mutex_);
        dropped_ += lost;
        spooled_ = spool_->events();
        report_drop = lost > 0 && !std::exchange(drop_reported_, true);
    }
    if (report_drop) {
        report("the spool for " + shown_url_ + " is full; events are dropped");
    }
}

/// One POST through the multi handle, so that stop() can wake it: once stopping, no request
/// outlasts the grace period.
bool HttpSink::post(const std::string& body, std::size_t events) {
    {
        std::lock_guard lock(mutex_);
        ++requests_;
    }
    CURL* h = curl_->easy.get();
    curl_->error[0] = '\0';
    (void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    (void)curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    const auto rc = static_cast<CURLcode>(perform());
    long status = 0;
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        failed(curl_->error[0] != '\0' ? curl_->error : curl_easy_strerror(rc));
        return false;
    }
    if (status < 200 || status > 299) {
        failed("the collector answered HTTP " + std::to_string(status));
        return false;
    }
    succeeded();
    std::lock_guard lock(mutex_);
    delivered_ += events;
    return true;
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
    if (failing_) {
        report("the collector at " + shown_url_ + " accepts events again");
    }
    failing_ = false;
    backoff_ = std::chrono::milliseconds(0);
    retry_at_ = {};
}

/// Reports the first failure of an outage, and backs off: retry_min, doubling to retry_max.
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
    backoff_ =
        backoff_.count() == 0 ? options_.retry_min : std::min(2 * backoff_, options_.retry_max);
    retry_at_ = Steady::now() + backoff_;
}

/// Sleeps until the retry is due (or the grace period ends), waking to spool new lines.
void HttpSink::wait_retry() {
    std::unique_lock lock(mutex_);
    const bool was_stopping = stopping_;
    const auto until = stopping_ ? std::min(retry_at_, deadline_) : retry_at_;
    wake_.wait_until(lock, until, [&] { return !queue_.empty() || stopping_ != was_stopping; });
}

void HttpSink::report_end() {
    std::uint64_t kept = spool_->events();
    std::uint64_t lost = 0;
    {
        std::lock_guard lock(mutex_);
        if (!spool_->on_disk()) {
            dropped_ += kept;  // a memory spool ends with the process
            kept = 0;
        }
        lost = dropped_;
        spooled_ = kept;
    }
    if (kept > 0) {
        report(std::to_string(kept) + " events not delivered to " + shown_url_ + " are kept in " +
               spool_->run_dir() + " for the next run");
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
