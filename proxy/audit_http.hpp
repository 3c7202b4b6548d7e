// SPDX-License-Identifier: Apache-2.0
// The HTTP collector sink of the audit trail (DESIGN §6): the Auditor's writer thread hands it
// the JSON lines it wrote to the file; its own sender thread POSTs them with libcurl in
// batches (Content-Type: application/x-ndjson, one line per event, exactly as in the file).
// A batch the collector did not answer with 2xx goes to the Spool, and is retried with
// exponential backoff; the spool is always sent before newer events, so the collector
// receives the stream in seq order, each event once. push() only takes a lock: a collector
// that hangs never delays the proxy or the other sinks; beyond the bounds events are dropped,
// counted and reported.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "policy/result.hpp"
#include "policy/settings.hpp"
#include "proxy/audit_spool.hpp"

namespace lj::proxy {

class HttpSink {
  public:
    struct Options {
        std::string url;  ///< http:// or https://
        std::size_t batch_size = 100;
        std::chrono::milliseconds flush_interval{1000};  ///< longest wait of a waiting event
        Spool::Options spool;                 ///< dir (none: memory), bounds; run_name set here
        std::optional<std::string> extra_ca;  ///< PEM file trusted besides the system store
        std::size_t queue_capacity = 65536;   ///< lines waiting for the sender thread
        std::chrono::milliseconds connect_timeout{5000};
        std::chrono::milliseconds request_timeout{30000};
        std::chrono::milliseconds retry_min{1000};   ///< backoff after a failure, doubling…
        std::chrono::milliseconds retry_max{60000};  ///< …up to this
        std::chrono::milliseconds grace{5000};       ///< stop(): time left to deliver
    };

    /// Checks the URL, opens the spool (adopting earlier runs' batches, which are sent
    /// first) and starts the sender thread. Errors name the key: "audit.http.url: …",
    /// "audit.http.spool_dir: cannot create DIR: …".
    static Result<std::unique_ptr<HttpSink>> start(Options options);

    ~HttpSink();  ///< calls stop()
    HttpSink(const HttpSink&) = delete;
    HttpSink& operator=(const HttpSink&) = delete;

    /// Queues JSON lines (each ending with '\n'). Never blocks on I/O and never throws;
    /// lines beyond queue_capacity are dropped and counted. Thread-safe.
    void push(std::string_view lines);

    /// Delivers what it can within `grace` (no new batch is started after it), moves the rest
    /// to the spool, joins the sender and reports on stderr how many events were kept in the
    /// spool for the next run or lost. Idempotent; push() drops afterwards.
    void stop();

    std::uint64_t delivered() const;  ///< events the collector accepted (2xx)
    std::uint64_t dropped() const;    ///< events lost: queue or spool full, or unspoolable
    std::uint64_t spooled() const;    ///< events in the spool now
    std::uint64_t requests() const;   ///< POSTs made, successful or not

  private:
    struct Line {
        std::string text;
        std::chrono::steady_clock::time_point arrived;
    };
    struct Curl;  // the easy handle and its header list (audit_http.cpp)

    explicit HttpSink(Options options);
    void run();
    bool finished();
    void send_spooled();
    void send_queued();
    std::vector<std::string> take_batch();
    void spool_queue();
    void spool_lines(const std::vector<std::string>& lines);
    bool post(const std::string& body, std::size_t events);
    int perform();  ///< a CURLcode
    std::chrono::milliseconds poll_interval() const;
    void succeeded();
    void failed(const std::string& why);
    void wait_retry();
    void report_end();

    Options options_;
    std::string shown_url_;  ///< the URL without user:password, for messages
    std::unique_ptr<Curl> curl_;
    std::unique_ptr<Spool> spool_;  ///< sender thread only (after start)
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Line> queue_;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point deadline_{};  ///< stop() + grace
    std::uint64_t delivered_ = 0;                       ///< under mutex_
    std::uint64_t dropped_ = 0;                         ///< under mutex_
    std::uint64_t spooled_ = 0;                         ///< under mutex_: spool_->events()
    std::uint64_t requests_ = 0;                        ///< under mutex_
    bool drop_reported_ = false;                        ///< under mutex_
    std::chrono::milliseconds backoff_{0};              ///< sender thread only
    std::chrono::steady_clock::time_point retry_at_{};  ///< sender thread only
    bool failing_ = false;                              ///< sender thread only
    std::uint64_t spool_lost_seen_ = 0;                 ///< sender thread only
    std::thread sender_;
};

/// The sink's options for the settings' audit.http (which must be set): the spool is
/// audit.http.spool_dir, else LOG_DIR/audit-spool, else memory; an https collector is
/// verified with the system store and `extra_ca` (default: tls.upstream_ca). Pure.
HttpSink::Options http_sink_options(const policy::Settings& settings,
                                    const std::optional<std::string>& extra_ca);

}  // namespace lj::proxy
