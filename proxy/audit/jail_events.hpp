// SPDX-License-Identifier: Apache-2.0
// Where the supervisor's audit events go (DESIGN §6): to our landjail-proxy through its
// --event-fd pipe, so that they join the proxy's ordered stream; once the proxy is gone, to
// an Auditor of landjail's own. landjail keeps the pipe's read end open as well: a write never
// meets a pipe without readers (no EPIPE, no SIGPIPE), and the events the dead proxy left
// unread are recovered instead of lost.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "proxy/audit/auditor.hpp"
#include "proxy/base/fd.hpp"

namespace lj::jail {

class JailEvents {
  public:
    /// The two ends of the event pipe: `write_end` (made non-blocking here) is where events
    /// go while the proxy lives; `read_end` is read only by switch_to().
    JailEvents(UniqueFd write_end, UniqueFd read_end);

    /// The supervisor's sink: never blocks. An event that finds the pipe full (the proxy
    /// stuck), or that the local auditor refuses, is dropped and counted. Thread-safe.
    void record(proxy::AuditEvent&& event);

    /// The proxy is gone (it exited, or it was stopped): the events it left in the pipe go
    /// to `local` in their order, then every later event. A line the proxy had half read
    /// cannot be recovered and is counted as dropped, as is everything when `local` is
    /// null. Only the first call switches; it returns the number of events recovered.
    /// Thread-safe.
    std::uint64_t switch_to(std::shared_ptr<proxy::Auditor> local);

    /// Events lost so far (see record() and switch_to()).
    std::uint64_t dropped() const { return dropped_.load(); }

  private:
    void recover(const std::string& text, std::uint64_t* recovered);  ///< under mutex_

    std::mutex mutex_;  ///< orders record() against switch_to()
    UniqueFd write_;
    UniqueFd read_;
    bool switched_ = false;
    std::shared_ptr<proxy::Auditor> local_;
    std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace lj::jail
