// SPDX-License-Identifier: Apache-2.0
// The audit trail (DESIGN §6): one JSON object per line, one ordered stream per session. The
// proxy (and the supervisor) call Auditor::record() on their hot path; it never blocks and
// never does I/O: events go into a bounded queue that a writer thread drains into the sinks.
// Every event that does not reach a sink is counted: when the queue is full (the event is
// dropped before it has a seq), when a sink cannot write it (a full disk, a collector that is
// away), when the HTTP collector refuses it. Each loss is said at once on stderr (once per
// series), in an `audit_dropped` event in every sink as soon as that sink can be written
// again, and in a total at stop(). writable() says whether the trail can be written now, so
// that a proxy with `audit.required` can refuse requests (503) while it cannot.
#pragma once

#include <atomic>
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
#include <unordered_map>
#include <vector>

#include "policy/config.hpp"
#include "policy/result.hpp"
#include "policy/settings.hpp"
#include "proxy/audit/event.hpp"
#include "proxy/audit/file.hpp"
#include "proxy/audit/http_sink.hpp"
#include "proxy/audit/jail_link.hpp"
#include "proxy/base/fd.hpp"

namespace lj::proxy {

/// One loss of audit events, as an audit_dropped event reports it.
struct AuditLoss {
    std::string sink;    ///< file | socket | http; empty: the queue (lost for every sink)
    std::string reason;  ///< queue_full | write_failed | file_deleted | disconnected |
                         ///< spool_full | unreadable | rejected
    int err = 0;         ///< the errno, when one says why ("errno": "ENOSPC")
    int status = 0;      ///< rejected: the collector's HTTP status
    bool cut = false;    ///< the line before the notice is the start of a cut event
    std::uint64_t count = 0;
};

class Auditor {
  public:
    struct Options {
        std::optional<std::string> file;  ///< JSON-lines file, appended (see AuditFile)
        std::optional<std::string>
            socket;                  ///< unix stream socket: one JSON line per event, reconnects
        bool stderr_denials = true;  ///< logfmt `landjail_request decision=deny …` line per denial
        /// HTTP collector: the same lines, spooled and posted in batches by the sink's own
        /// thread (spool.run_name empty: SESSION_ID-PID).
        std::optional<HttpSink::Options> http;
        std::size_t queue_capacity = 65536;
        std::string session_id;  ///< empty: a random UUIDv4
        policy::Labels labels;   ///< workspace_id, … added to every event when set
        bool required = false;   ///< audit.required: requests are refused while !writable()
    };

    /// Opens the sinks (the file is opened here so that a bad path is an error at start-up,
    /// naming the path, the problem and the fix) and starts the writer thread.
    static Result<std::unique_ptr<Auditor>> start(Options options);

    ~Auditor();  ///< calls stop()
    Auditor(const Auditor&) = delete;
    Auditor& operator=(const Auditor&) = delete;

    /// Stamps time and seq and enqueues; never blocks on I/O, never throws. Thread-safe.
    /// With the jail's events attached, what the jail wrote before this call is recorded
    /// first, so that a refusal of the jail precedes the requests made after it. Returns false
    /// when the event was dropped (queue full or stopped).
    bool record(AuditEvent event);

    /// The jail's event pipe (landjail-proxy --event-fd): its events join this stream, read
    /// as they come by a thread of their own, and taken first by every record(). The events
    /// left in the pipe are recorded by stop().
    void attach_jail_events(UniqueFd fd);

    /// Drains the queue into the sinks, flushes and fsyncs the file, joins the writer, and
    /// reports on stderr every sink's total of lost events. Idempotent. After stop(),
    /// record() drops.
    void stop();

    /// Asks the writer to open the audit file's path again (SIGHUP, after logrotate renamed
    /// the file), creating it when it is gone; the events after the request go to the new
    /// file. Returns at once; never blocks on I/O. Thread-safe (not async-signal-safe).
    void reopen();

    /// Whether the trail can be written now: the queue is not full and the last write of
    /// every sink but stderr succeeded (the file, the socket, the HTTP sink's spool; an HTTP
    /// collector that is away while the spool holds the events does not count). Becomes
    /// true again with the first write that succeeds (the writer retries every second while
    /// a sink fails). One atomic load: cheap, lock-free, thread-safe.
    bool writable() const noexcept { return problems_.load(std::memory_order_relaxed) == 0; }
    /// Options::required (--audit-required, audit.required).
    bool required() const noexcept { return options_.required; }
    /// required() && !writable(): the proxy must answer 503 instead of forwarding.
    bool must_refuse() const noexcept { return options_.required && !writable(); }

    const std::string& session_id() const { return options_.session_id; }
    std::uint64_t recorded() const { return seq_.load(); }  ///< events accepted
    /// Events written to the file (without a file: events the writer handled).
    std::uint64_t written() const { return written_.load(); }
    std::uint64_t dropped() const { return dropped_.load(); }      ///< refused: queue full, stopped
    std::uint64_t file_lost() const { return file_lost_.load(); }  ///< not written to the file
    std::uint64_t socket_lost() const { return socket_lost_.load(); }  ///< not sent to the socket
    /// The HTTP collector sink (its counters), or null without one.
    const HttpSink* http() const { return http_.get(); }

    /// The JSON line for an event (no trailing newline), as written to the file. Pure.
    static std::string to_json(const AuditEvent& event, const std::string& session_id,
                               std::uint64_t seq, std::chrono::system_clock::time_point time,
                               const policy::Labels& labels);
    /// The logfmt stderr line for a denial (no trailing newline). Pure.
    static std::string to_logfmt(const AuditEvent& event);
    /// The "audit_dropped" line that reports `loss` (no trailing newline).
    static std::string dropped_json(const std::string& session_id, const AuditLoss& loss,
                                    const policy::Labels& labels);

  private:
    bool enqueue(AuditEvent event);  ///< record() without taking the jail's events first
    struct Queued {
        AuditEvent event;
        std::uint64_t seq;
        std::chrono::system_clock::time_point time;
    };
    enum Sink : std::size_t { kFile, kSocket, kHttp, kSinks };
    enum Problem : unsigned {
        kQueueFull = 1,
        kFileFailing = 2,
        kSocketFailing = 4,
        kHttpLosing = 8
    };

    explicit Auditor(Options options);
    Status open_sinks();
    Status start_http();  ///< the HTTP sink, when options_.http asks for one
    void run();
    bool wait_for_work(std::unique_lock<std::mutex>& lock);
    // Writer-thread helpers (audit_writer.cpp), called from write_batch() only.
    void write_batch(std::vector<Queued>& batch);
    std::string render(const std::vector<Queued>& batch) const;  ///< JSON lines
    std::string notices(Sink sink) const;  ///< audit_dropped lines pending for `sink`
    void collect_losses();                 ///< queue drops and HTTP losses since last time
    void collect_http_losses();
    void lose(const AuditLoss& loss);  ///< pending in every sink
    void reopen_file();
    void write_file(const std::string& lines, std::size_t events);
    void file_failed(const AuditLoss& loss, const std::string& why);
    void write_socket(const std::string& lines, std::size_t events);
    bool connect_socket();
    void socket_failed(const AuditLoss& loss);
    void write_http(const std::string& lines);
    void write_denials(const std::vector<Queued>& batch) const;  ///< logfmt lines to stderr
    void set_problem(Problem p, bool on);
    void close_sinks();  ///< after the writer ended: fsync, close, report the totals

    Options options_;
    std::unique_ptr<AuditFile> file_;
    UniqueFd socket_;
    std::unique_ptr<HttpSink> http_;  ///< fed by the writer thread; stopped after it
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Queued> queue_;
    bool stopping_ = false;
    bool reopen_ = false;  ///< under mutex_: reopen() was called
    std::atomic<std::uint64_t> seq_{0};
    std::atomic<std::uint64_t> written_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> file_lost_{0};
    std::atomic<std::uint64_t> socket_lost_{0};
    std::atomic<unsigned> problems_{0};  ///< Problem bits
    // Writer thread only (and stop(), after the writer has ended):
    std::vector<AuditLoss> pending_[kSinks];  ///< notices each sink has not written yet
    std::uint64_t dropped_seen_ = 0;          ///< queue drops already in pending_
    std::chrono::steady_clock::time_point next_connect_{};
    std::string file_error_;        ///< the current file failure ("" when writing works)
    int file_first_err_ = 0;        ///< errno of the first file failure, for the total
    std::string socket_error_;      ///< the current socket failure ("" when connected)
    bool socket_reported_ = false;  ///< the current series of socket losses was reported
    bool queue_reported_ = false;   ///< the current series of queue drops was reported
    std::thread writer_;
    std::unique_ptr<JailEventReader> jail_;  ///< set once, before any record() from workers
};

/// Creates the settings' log_dir (and its parents) when it does not exist, as boundary does.
Status make_log_dir(const policy::Settings& s);

/// The auditor the settings ask for (file, socket, stderr denials, HTTP collector, labels),
/// or none (null) when audit logs are disabled. `session_id` empty: a new random one. Shared
/// by the proxy and the jail's supervisor, so both write the same session to the same sinks.
/// An https collector is verified with the system store and `extra_ca` (default: the
/// settings' tls.upstream_ca), as the proxy's upstream connections are.
Result<std::unique_ptr<Auditor>> start_auditor(
    const policy::Settings& settings, const std::string& session_id,
    const std::optional<std::string>& extra_ca = std::nullopt);

/// A random UUIDv4 for a new audit session.
Result<std::string> new_session_id();

}  // namespace lj::proxy
