// SPDX-License-Identifier: Apache-2.0
// The proxy's own responses (400/403/421/431/502/504 and 100 Continue) with their texts, and
// the audit record of every decision, attributed to the jailed process when it is known.
#include <string>
#include <utility>

#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "policy/rule.hpp"
#include "proxy/session/session_impl.hpp"

namespace lj::proxy {

std::string Session::status_step_body(const std::string& target, const UpstreamFailure& f) {
    return "landjail: could not reach " + target + "\n\nstep:   " + f.step +
           "\nerror:  " + f.detail + "\n";
}

awaitable<bool> Session::respond(http::status status, const std::string& body, bool keep_alive,
                                 bool deny) {
    http::response<http::string_body> res{status, 11};
    if (status != http::status::continue_) {
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.set(http::field::server, "landjail-proxy");
        if (deny) {
            res.set("X-Landjail-Decision", "deny");
        }
        res.keep_alive(keep_alive);
        res.content_length(body.size());
        if (!head_request_) {
            res.body() = body;
        }
    }
    error_code ec;
    co_await http::async_write(client_, res, asio::redirect_error(use_awaitable, ec));
    co_return !ec;
}

awaitable<void> Session::respond_upstream_failure(Exchange& x, const std::string& target,
                                                  const UpstreamFailure& f, bool keep_alive) {
    const auto st = f.timed_out ? http::status::gateway_timeout : http::status::bad_gateway;
    x.status(static_cast<int>(st));
    x.end(f.timed_out ? "upstream_timeout" : "upstream_failed");
    x.record();  // before the answer: the client may send its next request at once
    const std::string body = status_step_body(target, f);
    co_await respond(st, body, keep_alive);
}

void Session::Exchange::record() {
    if (recorded_) {
        return;
    }
    recorded_ = true;
    session_.audit(request_.method, request_.url(), request_.host.text, decision_, {}, status_,
                   outcome_);
}

std::string Session::deny_body(const policy::Request& r, const policy::Decision& d) const {
    std::string body =
        "landjail: request denied by policy\n\n  " + r.method + " " + r.url() + "\n\n";
    if (d.reason == policy::Reason::DenyRule && d.rule) {
        body += "It is denied by the rule '" + d.rule->text + "' (" + d.rule->origin + ").\n";
    } else {
        body += "No allow rule matches it. To allow it, add the rule:\n\n  --allow '" +
                policy::suggested_rule(r) +
                "'\n\n(or the same line under allowlist: in the config file)\n";
    }
    return body;
}

std::string Session::connect_deny_body(const std::string& target, const policy::Host& host,
                                       const policy::Decision& d) {
    std::string body = "landjail: CONNECT " + target + " refused: ";
    if (d.rule) {
        body += "it is denied by the rule '" + d.rule->text + "' (" + d.rule->origin + ").\n";
    } else {
        body +=
            "no rule allows any request to this host and port.\n"
            "To allow it, add for example:\n\n  --allow 'domain=" +
            host.authority() + "'\n";
    }
    return body;
}

void Session::audit(const std::string& method, const std::string& url, const std::string& host,
                    const policy::Decision& d, std::string reason, std::optional<int> status,
                    std::string outcome) {
    if (!shared_.auditor) {
        return;
    }
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
    if (!who_ && shared_.clients && client_port_ != 0) {
        who_ = shared_.clients->take(client_port_);
    }
    if (who_) {
        e.pid = who_->pid;
        e.exe = who_->exe;
    }
    shared_.auditor->record(std::move(e));
}

}  // namespace lj::proxy
