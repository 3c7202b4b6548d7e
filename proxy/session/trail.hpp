// SPDX-License-Identifier: Apache-2.0
// A session's one way to the audit trail: the event of a decision, attributed to the jailed
// process behind the client connection when it is known, recorded by Trail::record() — the
// only place where the session hands an event to the Auditor. The Exchange of one forwarded
// request records through it exactly once, on whatever path the exchange ends.
//
// Thread-safety: a Trail belongs to its connection's io_context thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "proxy/audit/auditor.hpp"
#include "proxy/session/session.hpp"

namespace lj::proxy {

/// The event of one decision (pure). `reason` empty: the decision's own reason; `status`:
/// what the client got (unset: nothing); `outcome`: how the exchange ended when not normally.
AuditEvent decision_event(const std::string& method, const std::string& url,
                          const std::string& host, const policy::Decision& d, std::string reason,
                          std::optional<int> status, std::string outcome = {});

class Trail {
  public:
    /// `client_port`: the client's port, which names the jailed process in the client table
    /// (0: unknown).
    Trail(const ProxyShared& shared, std::uint16_t client_port)
        : shared_(shared), client_port_(client_port) {}

    /// Records `e` now, with the pid and exe of the process behind the connection (taken from
    /// the client table with the connection's first event). Without an auditor: nothing.
    void record(AuditEvent e);

    /// decision_event() recorded.
    void decision(const std::string& method, const std::string& url, const std::string& host,
                  const policy::Decision& d, std::string reason, std::optional<int> status,
                  std::string outcome = {}) {
        record(decision_event(method, url, host, d, std::move(reason), status, std::move(outcome)));
    }

    /// audit.required and the trail cannot be written now: allowed requests get a 503.
    bool must_refuse() const { return shared_.auditor && shared_.auditor->must_refuse(); }

    /// Events this connection recorded so far.
    std::uint64_t recorded() const { return recorded_; }

    /// Session correlation for an allowed request: the session id and the sequence number
    /// reserved for its event (Auditor::reserve_sequence), when `request` matches a target;
    /// nullopt otherwise (or without an auditor).
    std::optional<std::pair<std::string, std::int32_t>> correlate(const policy::Request& request);

  private:
    const ProxyShared& shared_;
    std::uint16_t client_port_;
    std::uint64_t recorded_ = 0;
    std::optional<ClientMap::Who> who_;  ///< the jailed process behind it, once taken
};

/// The audit record of one forwarded request, written exactly once when the exchange ends, on
/// whatever path it ends (the destructor writes it if nothing did before): `status` is what
/// the client got (unset: no response reached it), `outcome` how the exchange ended when it
/// did not end normally (the first cause is kept).
class Exchange {
  public:
    Exchange(Trail& trail, const policy::Request& request, const policy::Decision& decision)
        : trail_(trail), request_(request), decision_(decision) {}
    ~Exchange() { record(); }
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;

    void status(std::optional<int> code) { status_ = code; }
    /// The event's sequence number, reserved at decision time (session correlation).
    void sequence(std::int32_t n) { sequence_ = n; }
    void end(std::string_view outcome) {
        if (outcome_.empty()) {
            outcome_ = std::string(outcome);
        }
    }
    /// Writes the event now (once; later calls do nothing).
    void record();

  private:
    Trail& trail_;
    const policy::Request& request_;
    const policy::Decision& decision_;
    std::optional<int> status_;
    std::optional<std::int32_t> sequence_;
    std::string outcome_;
    bool recorded_ = false;
};

/// The CONNECT refusal of a denied tunnel that was intercepted (ProxyShared::intercept_denied):
/// recorded when the connection ends without a request decided in the tunnel (the client gave
/// up at TLS, or sent nothing), so that the decision still has its one event.
class PendingRefusal {
  public:
    explicit PendingRefusal(Trail& trail) : trail_(trail) {}
    ~PendingRefusal() { settle(); }
    PendingRefusal(const PendingRefusal&) = delete;
    PendingRefusal& operator=(const PendingRefusal&) = delete;

    /// Holds `event` until settle(); events recorded from now on stand for it.
    void arm(AuditEvent event) {
        event_ = std::move(event);
        mark_ = trail_.recorded();
    }
    /// Records the held event when nothing was recorded since arm(). Once.
    void settle();

  private:
    Trail& trail_;
    std::optional<AuditEvent> event_;
    std::uint64_t mark_ = 0;
};

}  // namespace lj::proxy
