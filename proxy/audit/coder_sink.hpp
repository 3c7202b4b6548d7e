// SPDX-License-Identifier: Apache-2.0
// The Coder workspace agent sink (DESIGN §6, boundary's audit protocol): the agent listens on a
// unix stream socket (--log-proxy-socket-path, CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH,
// $TMPDIR/boundary-audit.sock) and forwards what it reads to coderd. It never writes. Each
// frame is a 4-byte header — byte 0 the tag, bytes 1-3 the payload's length, big-endian, at
// most 32768 — then a protobuf payload: tag 1 a coder.agent.v2.ReportBoundaryLogsRequest, tag 2
// a coder.boundarylogproxy.codec.v1.BoundaryMessage (the logs, or the sender's drop counts;
// agents older than March 2026 drop tag-2 frames, so tag 1 is the default). coderd refuses
// more than 1000 logs per request and counts a log as allowed only when its matched_rule is
// set, so denied logs never carry one.
//
// Unlike boundary, which loses its last partial batch at exit, the sink's own thread sends
// batches (up to batch_logs logs or flush_interval) split to fit 32 KiB and 1000 logs,
// reconnects after errors, resends from the frame the agent did not get whole, and delivers
// what is left at stop() within a grace period. push() never blocks: beyond queue_capacity
// logs are dropped and counted; every loss is reported (take_losses(), and with tag 2 to the
// agent as BoundaryStatus).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "policy/result.hpp"
#include "proxy/base/fd.hpp"

namespace lj::proxy {

class CoderSink {
  public:
    using Clock = std::chrono::system_clock;

    struct Options {
        std::string socket_path;
        std::string session_id;             ///< the run's UUID (the audit session id)
        std::string confined_process_name;  ///< the basename of the jailed command
        bool envelope = false;              ///< tag-2 frames (BoundaryMessage, drop counts)
        std::size_t batch_logs = 100;       ///< logs per batch at most (a frame holds ≤ 1000)
        std::chrono::milliseconds flush_interval{1000};
        std::size_t queue_capacity = 65536;
        std::chrono::milliseconds send_timeout{2000};  ///< a stalled agent: reconnect, resend
        std::chrono::milliseconds reconnect_interval{1000};
        /// stop(): time left to deliver (send timeouts included, one reconnect), so that
        /// landjail still ends within 1 s of its command; the rest is counted undelivered.
        std::chrono::milliseconds grace{800};
    };

    /// One log as coderd records it.
    struct Log {
        bool allowed = false;
        Clock::time_point time;
        std::string method;
        std::string url;
        std::string matched_rule;  ///< "" for a denied log (coderd's rule)
        std::int32_t sequence = 0;
    };

    /// One loss, for the trail's audit_dropped events.
    struct Loss {
        std::string reason;  ///< queue_full | undelivered
        std::uint64_t count = 0;
    };

    static constexpr std::size_t kMaxPayload = 32768;
    static constexpr std::size_t kMaxLogs = 1000;

    /// Starts the sender thread, which connects (and keeps reconnecting) on its own.
    static Result<std::unique_ptr<CoderSink>> start(Options options);
    ~CoderSink();  ///< stop()
    CoderSink(const CoderSink&) = delete;
    CoderSink& operator=(const CoderSink&) = delete;

    /// Queues logs; never blocks on the agent, never throws. Logs beyond the queue's bound
    /// are dropped and counted. Thread-safe.
    void push(std::vector<Log> logs);

    /// Delivers what it can within the grace period, joins the sender, reports on stderr what
    /// was lost. Idempotent; push() drops afterwards.
    void stop();

    std::vector<Loss> take_losses();  ///< losses since the last call; thread-safe
    std::uint64_t delivered() const;  ///< logs written whole to the agent's socket
    std::uint64_t dropped() const;    ///< logs lost (queue full, or undelivered at stop)

    /// One frame (header + payload) and how many logs it carries.
    struct Frame {
        std::string bytes;
        std::size_t logs = 0;
    };
    /// The frames for `logs`, in order: each payload at most kMaxPayload bytes and kMaxLogs
    /// logs; a log too large for a frame of its own has its URL cut. Pure.
    static std::vector<Frame> frames(const std::vector<Log>& logs, const Options& options);
    /// A tag-2 BoundaryStatus frame with the drop counts. Pure.
    static std::string status_frame(std::int64_t channel_full, std::int64_t batch_full);

  private:
    explicit CoderSink(Options options) : options_(std::move(options)) {}
    void run();
    bool take_batch(std::vector<Log>& batch);  ///< waits; false when stopping and empty
    /// Sends the batch; returns how many of its logs went out in whole frames (the rest is
    /// sent again after a reconnect: a frame cut by a failure is dropped by the agent).
    std::size_t deliver(const std::vector<Log>& batch);
    bool send_frame(const std::string& frame);
    bool connected();
    void lose(const std::string& reason, std::uint64_t n);

    Options options_;
    UniqueFd socket_;                                   ///< sender thread only
    std::chrono::steady_clock::time_point next_try_{};  ///< sender thread only
    bool failing_reported_ = false;                     ///< sender thread only
    std::int64_t status_sent_ = -1;                     ///< sender thread: drops last reported
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Log> queue_;                                 ///< under mutex_
    std::chrono::steady_clock::time_point first_queued_{};  ///< under mutex_: queue_ filled
    bool stopping_ = false;                                 ///< under mutex_
    std::chrono::steady_clock::time_point deadline_{};      ///< under mutex_: stop() + grace
    std::uint64_t delivered_ = 0;                           ///< under mutex_
    std::uint64_t dropped_ = 0;                             ///< under mutex_
    std::uint64_t channel_full_ = 0;                        ///< under mutex_
    std::uint64_t batch_full_ = 0;                          ///< under mutex_
    std::vector<Loss> losses_;                              ///< under mutex_
    bool drop_reported_ = false;                            ///< under mutex_
    std::thread sender_;
};

}  // namespace lj::proxy
