// SPDX-License-Identifier: Apache-2.0
// What landjail's supervisor shares with the proxy it starts: the jail's audit events (JSON
// lines on --event-fd, read by a JailEventReader into the proxy's Auditor, so that they join
// its ordered stream) and the table of the processes behind client ports (--clients-fd).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "policy/result.hpp"
#include "proxy/audit/event.hpp"
#include "proxy/base/fd.hpp"

namespace lj::proxy {

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

/// The proxy's end of the event pipe. A thread reads the events as they come; drain() takes
/// what the pipe holds now, so that the Auditor can put an event the jail made before a
/// request ahead of that request. Events go to `sink` in the order they were written.
/// Thread-safety: drain() and the reader thread serialize on one mutex; `sink` is called
/// under it.
class JailEventReader {
  public:
    using Sink = std::function<void(AuditEvent&&)>;
    JailEventReader(UniqueFd fd, Sink sink);
    ~JailEventReader();  ///< stop()
    JailEventReader(const JailEventReader&) = delete;
    JailEventReader& operator=(const JailEventReader&) = delete;

    /// Starts the reader thread; false when it cannot (then drain() alone reads the pipe).
    bool start();
    /// Reads what the pipe holds now; false at EOF (landjail is gone).
    bool drain();
    /// Takes what is left and joins the thread. Idempotent.
    void stop();

  private:
    void run();

    UniqueFd fd_;
    Sink sink_;
    std::mutex mutex_;
    std::string pending_;  ///< a partial line; under mutex_
    UniqueFd stop_read_, stop_write_;
    std::thread reader_;
};

}  // namespace lj::proxy
