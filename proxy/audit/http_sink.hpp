// SPDX-License-Identifier: Apache-2.0
// The HTTP collector sink of the audit trail (DESIGN §6): the Auditor's writer thread hands it
// the JSON lines it wrote to the file, and push() appends them to the spool before it returns
// (a batch file in the spool directory, else memory), so a crash of the process loses none
// of the lines it took. The sink's own sender thread POSTs the spool's batches with libcurl,
// oldest first (Content-Type: application/x-ndjson, one line per event, exactly as in the
// file), and removes a batch only when the collector answered 2xx: the collector receives
// the stream in seq order, at least once (a batch whose 2xx answer was lost, or that was in
// flight when the process died, is sent again: (session_id, seq) identifies an event).
// Failures (no connection, 408, 429, 5xx, other statuses) are retried with exponential
// backoff; 413 splits the batch; any other 4xx is a permanent refusal: the batch is moved
// to the spool's `rejected` directory (dropped in memory), counted and reported, and the
// sender backs off before its next request. A collector that hangs never delays the proxy
// or the other sinks; lines beyond the spool's bound are dropped, counted and reported.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "policy/result.hpp"
#include "policy/settings.hpp"
#include "proxy/audit/spool.hpp"

namespace lj::proxy {

class HttpSink {
  public:
    using Steady = std::chrono::steady_clock;

    struct Options {
        std::string url;  ///< http:// or https://
        std::size_t batch_size = 100;
        std::chrono::milliseconds flush_interval{1000};  ///< longest wait of a waiting event
        Spool::Options spool;                 ///< dir (none: memory), bounds; run_name set here
        std::optional<std::string> extra_ca;  ///< PEM file trusted besides the system store
        std::chrono::milliseconds connect_timeout{5000};
        std::chrono::milliseconds request_timeout{30000};
        std::chrono::milliseconds retry_min{1000};   ///< backoff after a failure, doubling…
        std::chrono::milliseconds retry_max{60000};  ///< …up to this
        std::chrono::milliseconds grace{5000};       ///< stop(): time left to deliver
    };

    /// Events this sink lost (or set aside), by cause, for the trail's audit_dropped events.
    struct Loss {
        std::string reason;  ///< spool_full | write_failed | unreadable | rejected
        int err = 0;         ///< write_failed, unreadable: the errno
        int status = 0;      ///< rejected: the collector's HTTP status
        std::uint64_t count = 0;
    };

    /// Checks the URL, opens the spool (adopting earlier runs' batches, which are sent
    /// first) and starts the sender thread. Errors name the key: "audit.http.url: …",
    /// "audit.http.spool_dir: cannot create DIR: …".
    static Result<std::unique_ptr<HttpSink>> start(Options options);

    ~HttpSink();  ///< calls stop()
    HttpSink(const HttpSink&) = delete;
    HttpSink& operator=(const HttpSink&) = delete;

    /// Appends JSON lines (each ending with '\n') to the spool: on disk, the lines are in the
    /// batch file when it returns. Never waits for the collector (only for the spool's write
    /// and, briefly, for the sender reading a batch); never throws. Lines beyond the spool's
    /// bound, or that could not be written, are dropped and their number returned; unless
    /// `counted` is false (the Auditor's own notices, which it keeps), they are also counted
    /// (dropped(), take_losses()) and reported once per series on stderr. Thread-safe.
    std::size_t push(std::string_view lines, bool counted = true);

    /// Delivers what it can within `grace` (no new batch is started after it), joins the
    /// sender and reports on stderr how many events were kept in the spool for the next run
    /// or lost. Idempotent; push() drops afterwards.
    void stop();

    /// The losses since the last call, merged by cause. Thread-safe.
    std::vector<Loss> take_losses();

    std::uint64_t delivered() const;  ///< events the collector accepted (2xx)
    std::uint64_t dropped() const;    ///< events lost: spool full, unwritable, unreadable
    std::uint64_t rejected() const;   ///< events the collector refused for good (4xx)
    std::uint64_t spooled() const;    ///< events in the spool now (not delivered yet)
    std::uint64_t requests() const;   ///< POSTs made, successful or not

  private:
    enum class Outcome { Delivered, Retry, TooLarge, Rejected };
    struct Curl;  // the easy handle and its header list (audit_http.cpp)

    explicit HttpSink(Options options);
    void run();
    bool wait_for_batch(std::unique_lock<std::mutex>& lock);
    bool finished() const;
    void settle(Outcome outcome, std::size_t events);
    void reject(std::size_t events);
    Outcome post(const std::string& body);
    Outcome classify(long status);
    int perform();  ///< a CURLcode
    std::chrono::milliseconds poll_interval() const;
    void add_loss(const Loss& loss);
    void succeeded();
    void failed(const std::string& why);
    void back_off();
    void report_end();

    Options options_;
    std::string shown_url_;  ///< the URL without user:password, for messages
    std::unique_ptr<Curl> curl_;
    std::unique_ptr<Spool> spool_;  ///< under mutex_
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    Steady::time_point deadline_{};         ///< stop() + grace
    std::uint64_t delivered_ = 0;           ///< under mutex_
    std::uint64_t dropped_ = 0;             ///< under mutex_
    std::uint64_t rejected_ = 0;            ///< under mutex_
    std::uint64_t requests_ = 0;            ///< under mutex_
    std::uint64_t kept_ = 0;                ///< under mutex_: left in the spool by stop()
    std::uint64_t spool_lost_seen_ = 0;     ///< under mutex_: spool_->lost() already counted
    std::vector<Loss> losses_;              ///< under mutex_: not yet taken
    bool drop_reported_ = false;            ///< under mutex_: the current series was reported
    std::chrono::milliseconds backoff_{0};  ///< under mutex_
    Steady::time_point retry_at_{};         ///< under mutex_
    bool failing_ = false;                  ///< sender thread only
    bool reject_reported_ = false;          ///< sender thread only
    std::thread sender_;
};

/// The sink's options for the settings' audit.http (which must be set): the spool is
/// audit.http.spool_dir, else LOG_DIR/audit-spool, else memory; an https collector is
/// verified with the system store and `extra_ca` (default: tls.upstream_ca). Pure.
HttpSink::Options http_sink_options(const policy::Settings& settings,
                                    const std::optional<std::string>& extra_ca);

}  // namespace lj::proxy
