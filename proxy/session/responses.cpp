// SPDX-License-Identifier: Apache-2.0
#include "proxy/session/responses.hpp"

#include <utility>

#include "policy/rule.hpp"

namespace lj::proxy {

namespace {

/// The text/plain answer; a denial carries X-Landjail-Decision: deny before Connection.
Reply text_reply(http::status status, std::string body, bool keep_alive, bool head_request,
                 bool deny) {
    Reply res{status, 11};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::server, "landjail-proxy");
    if (deny) {
        res.set("X-Landjail-Decision", "deny");
    }
    res.keep_alive(keep_alive);
    res.content_length(body.size());
    if (!head_request) {
        res.body() = std::move(body);
    }
    return res;
}

}  // namespace

Reply reply(http::status status, std::string body, bool keep_alive, bool head_request) {
    return text_reply(status, std::move(body), keep_alive, head_request, false);
}

Reply deny_reply(const policy::Request& r, const policy::Decision& d, bool keep_alive,
                 bool head_request) {
    return text_reply(http::status::forbidden, deny_body(r, d), keep_alive, head_request, true);
}

Reply connect_deny_reply(const std::string& target, const policy::Host& host,
                         const policy::Decision& d) {
    return text_reply(http::status::forbidden, connect_deny_body(target, host, d), false, false,
                      true);
}

Reply continue_reply() {
    return Reply{http::status::continue_, 11};
}

http::response<http::empty_body> tunnel_open(bool intercepted) {
    http::response<http::empty_body> ok{http::status::ok, 11};
    if (intercepted) {
        ok.reason("Connection established");
    }
    return ok;
}

std::string deny_body(const policy::Request& r, const policy::Decision& d) {
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

std::string connect_deny_body(const std::string& target, const policy::Host& host,
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

std::string upstream_failure_body(const std::string& target, const UpstreamFailure& f) {
    return "landjail: could not reach " + target + "\n\nstep:   " + f.step +
           "\nerror:  " + f.detail + "\n";
}

std::string header_too_large_body() {
    return "landjail: request headers larger than 64 KiB\n";
}

std::string malformed_request_body(std::string_view why) {
    return "landjail: malformed request: " + std::string(why) + "\n";
}

std::string bad_framing_body(std::string_view why) {
    return "landjail: bad request: " + std::string(why) + "\n";
}

std::string refused_head_body(std::string_view why) {
    return "landjail: " + std::string(why) + "\n";
}

std::string ambiguous_path_body(const policy::Request& r) {
    return "landjail: refused: the path of " + r.method + " " + r.url() + " holds " + r.ambiguity +
           ".\nServers decode such paths differently, and the rules "
           "constrain paths. Send the path in its plain form (or set "
           "ambiguous_paths: literal in the config).\n";
}

std::string malformed_body_body(std::string_view why) {
    return "landjail: malformed request body: " + std::string(why) + "\n";
}

std::string bad_connect_target_body(std::string_view why) {
    return "landjail: bad CONNECT target: " + std::string(why) + "\n";
}

std::string audit_unavailable_body() {
    return "landjail: the audit trail cannot be written (audit.required): the request was not "
           "forwarded\n";
}

}  // namespace lj::proxy
