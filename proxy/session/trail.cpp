// SPDX-License-Identifier: Apache-2.0
#include "proxy/session/trail.hpp"

#include <utility>

#include "policy/rule.hpp"

namespace lj::proxy {

AuditEvent decision_event(const std::string& method, const std::string& url,
                          const std::string& host, const policy::Decision& d, std::string reason,
                          std::optional<int> status, std::string outcome) {
    AuditEvent e;
    e.allowed = d.allowed;
    e.http_method = method;
    e.http_url = url;
    e.host = host;
    if (d.rule) {
        e.matched_rule = d.rule->text;
    }
    e.reason = reason.empty() ? std::string(policy::to_string(d.reason)) : std::move(reason);
    e.status = status;
    if (!outcome.empty()) {
        e.outcome = std::move(outcome);
    }
    return e;
}

void Trail::record(AuditEvent e) {
    if (!shared_.auditor) {
        return;
    }
    if (!who_ && shared_.clients && client_port_ != 0) {
        who_ = shared_.clients->take(client_port_);
    }
    if (who_) {
        e.pid = who_->pid;
        e.exe = who_->exe;
    }
    ++recorded_;
    shared_.auditor->record(std::move(e));
}

std::optional<std::pair<std::string, std::int32_t>> Trail::correlate(
    const policy::Request& request) {
    if (!shared_.auditor || !shared_.correlation ||
        !shared_.correlation->evaluate(request).allowed) {
        return std::nullopt;
    }
    return std::make_pair(shared_.auditor->session_id(), shared_.auditor->reserve_sequence());
}

void PendingRefusal::settle() {
    if (event_ && trail_.recorded() == mark_) {
        trail_.record(std::move(*event_));
    }
    event_.reset();
}

void Exchange::record() {
    if (recorded_) {
        return;
    }
    recorded_ = true;
    AuditEvent e = decision_event(request_.method, request_.url(), request_.host.text, decision_,
                                  {}, status_, outcome_);
    e.sequence = sequence_;
    trail_.record(std::move(e));
}

}  // namespace lj::proxy
