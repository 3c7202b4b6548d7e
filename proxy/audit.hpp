// SPDX-License-Identifier: Apache-2.0
// The audit trail (DESIGN §6): one JSON object per line, one ordered stream per session. The
// proxy (and the supervisor) call Auditor::record() on their hot path; it never blocks and
// never does I/O: events go into a bounded queue that a writer thread drains into the sinks.
// An event that was accepted is never lost: stop() drains the queue before it returns. When
// the queue is full the event is dropped and counted; the writer then adds an
// `audit_dropped` event with the count to the stream, and stop() reports the total.
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
#include "proxy/audit_http.hpp"

namespace lj::proxy {

/// One decided request or refused connection. Unset optionals are written as null (or
/// omitted where DESIGN §6 shows no field).
struct AuditEvent {
    std::string event = "http_request";  ///< http_request | connect_denied | socket_denied
    bool allowed = false;                ///< "decision": "allow" | "deny"
    std::string http_method;             ///< CONNECT for tunnel decisions
    std::string http_url;  ///< normalized URL (https://host/path?query, or host:port for CONNECT)
    std::string host;
    std::optional<std::string> matched_rule;  ///< the rule as written; null when none
    std::string reason;  ///< policy::to_string(Reason), or "bad_request", "misdirected", …
    std::optional<int> pid;
    std::optional<std::string> exe;
    std::optional<std::string> destination;  ///< supervisor events: "addr:port"
    std::optional<int> status;               ///< HTTP status sent to the client, when known
    /// How the exchange ended when it did not end normally: client_aborted, client_timeout,
    /// bad_chunk, upstream_failed, upstream_timeout, upstream_bad_response, idle_timeout.
    std::optional<std::string> outcome;
};

class Auditor {
  public:
    struct Options {
        std::optional<std::string> file;  ///< JSON-lines file, appended (created 0600)
        std::optional<std::string>
            socket;                  ///< unix stream socket: one JSON line per event, reconnects
        bool stderr_denials = true;  ///< logfmt `landjail_request decision=deny …` line per denial
        /// HTTP collector: the same lines, posted in batches by the sink's own thread
        /// (spool.run_name empty: SESSION_ID-PID).
        std::optional<HttpSink::Options> http;
        std::size_t queue_capacity = 65536;
        std::string session_id;  ///< empty: a random UUIDv4
        policy::Labels labels;   ///< workspace_id, … added to every event when set
    };

    /// Opens the sinks (the file is opened here so that a bad path is an error at start-up,
    /// naming the path and errno) and starts the writer thread.
    static Result<std::unique_ptr<Auditor>> start(Options options);

    ~Auditor();  ///< calls stop()
    Auditor(const Auditor&) = delete;
    Auditor& operator=(const Auditor&) = delete;

    /// Stamps time and seq and enqueues; never blocks on I/O, never throws. Thread-safe.
    /// Returns false when the event was dropped (queue full or stopped).
    bool record(AuditEvent event);

    /// Drains the queue into the sinks, flushes and fsyncs the file, joins the writer.
    /// Idempotent. After stop(), record() drops.
    void stop();

    const std::string& session_id() const { return options_.session_id; }
    std::uint64_t recorded() const { return seq_.load(); }     ///< events accepted
    std::uint64_t written() const { return written_.load(); }  ///< events written to every sink
    std::uint64_t dropped() const { return dropped_.load(); }
    /// The HTTP collector sink (its counters), or null without one.
    const HttpSink* http() const { return http_.get(); }

    /// The JSON line for an event (no trailing newline), as written to the file. Pure.
    static std::string to_json(const AuditEvent& event, const std::string& session_id,
                               std::uint64_t seq, std::chrono::system_clock::time_point time,
                               const policy::Labels& labels);
    /// The logfmt stderr line for a denial (no trailing newline). Pure.
    static std::string to_logfmt(const AuditEvent& event);
    /// The "audit_dropped" line that says `count` events were lost (no trailing newline).
    static std::string dropped_json(const std::string& session_id, std::uint64_t count,
                                    const policy::Labels& labels);

  private:
    struct Queued {
        AuditEvent event;
        std::uint64_t seq;
        std::chrono::system_clock::time_point time;
    };
    explicit Auditor(Options options);
    Result<bool> start_http();  ///< the HTTP sink, when options_.http asks for one
    void run();
    void write_batch(std::vector<Queued>& batch);
    // Writer-thread helpers, called from write_batch() only.
    std::string render(const std::vector<Queued>& batch);  ///< audit_dropped notice + JSON lines
    bool write_file(const std::string& lines);             ///< false on error (reported once)
    void write_socket(const std::string& lines);           ///< (re)connects at most every 1 s
    void write_denials(const std::vector<Queued>& batch) const;  ///< logfmt lines to stderr

    Options options_;
    int file_fd_ = -1;
    int socket_fd_ = -1;
    std::unique_ptr<HttpSink> http_;  ///< fed by the writer thread; stopped after it
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Queued> queue_;
    bool stopping_ = false;
    std::atomic<std::uint64_t> seq_{0};
    std::atomic<std::uint64_t> written_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::uint64_t dropped_reported_ = 0;                    ///< writer thread only
    std::chrono::steady_clock::time_point next_connect_{};  ///< writer thread only
    bool file_failing_ = false;  ///< writer thread only: the current write error was reported
    std::thread writer_;
};

/// Creates the settings' log_dir (and its parents) when it does not exist, as boundary does.
Result<bool> make_log_dir(const policy::Settings& s);

/// Whether the audit file at `path` can be opened for appending, checked without creating
/// it: an existing file must be writable and not a directory, a new one needs a directory
/// it can be created in. A directory that does not exist is an error unless
/// `missing_dir_ok` (a log_dir that will be created). The message does not repeat `path`.
Result<bool> check_audit_file(const std::string& path, bool missing_dir_ok = false);

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

/// One event as landjail's supervisor sends it to its proxy (landjail-proxy --event-fd), so
/// that the jail's refusals join the proxy's ordered stream: one JSON line. Only
/// connect_denied and socket_denied events are accepted back.
std::string event_to_wire(const AuditEvent& event);
Result<AuditEvent> event_from_wire(std::string_view line);

/// Who is behind a client connection of the proxy. landjail's supervisor makes every connect
/// of the jail; before the program's connect() returns it stores the pid in a table shared
/// with the proxy (a memfd: one 32-bit slot per client port), with no system call. A session
/// takes (and clears) its slot when it writes its first audit event, and names the process
/// with /proc/PID/exe.
class ClientMap {
  public:
    static constexpr std::size_t kSlots = 65536;
    static constexpr std::size_t kBytes = kSlots * sizeof(std::int32_t);

    /// Maps the table behind `fd` (kBytes long, read-write); errors name the problem.
    static Result<std::unique_ptr<ClientMap>> map(int fd);
    ~ClientMap();
    ClientMap(const ClientMap&) = delete;
    ClientMap& operator=(const ClientMap&) = delete;

    struct Who {
        int pid = 0;
        std::string exe;  ///< empty when the process is gone or unreadable
    };
    /// The process reported for this client port (and clears it); nullopt when none.
    std::optional<Who> take(std::uint16_t client_port);
    /// The supervisor's side: `port`'s connection was made for `pid`.
    static void store(void* table, std::uint16_t port, int pid);

  private:
    explicit ClientMap(void* table) : table_(table) {}
    void* table_;
};

}  // namespace lj::proxy
