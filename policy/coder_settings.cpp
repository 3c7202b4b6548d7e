// SPDX-License-Identifier: Apache-2.0
// The settings of landjail inside Coder (DESIGN §6): the workspace agent's audit socket and
// session correlation for Coder's AI Gateway, from boundary's flags, environment variables
// and config keys.
#include <algorithm>

#include "policy/request.hpp"
#include "policy/rule.hpp"
#include "policy/settings.hpp"
#include "policy/text.hpp"

namespace lj::policy {
namespace {

const std::string* env_value(const Inputs& in, const char* name) {
    auto it = in.env.find(name);
    return it == in.env.end() || it->second.empty() ? nullptr : &it->second;
}

Error at(const std::string& origin, const std::string& message) {
    return make_error(origin + ": " + message);
}

/// The socket path: flag > environment > file > $TMPDIR/boundary-audit.sock.
Status apply_socket(const Inputs& in, const BoundaryOnly& b, CoderAgentSettings& c) {
    if (in.flags.log_proxy_socket_path) {
        c.socket = Setting<std::string>{*in.flags.log_proxy_socket_path, "--log-proxy-socket-path"};
    } else if (const auto* v = env_value(in, "CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH")) {
        c.socket = Setting<std::string>{*v, "CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH"};
    } else if (b.log_proxy_socket_path && !b.log_proxy_socket_path->value.empty()) {
        c.socket = *b.log_proxy_socket_path;  // "" (boundary's default) is the default path
    } else {
        const std::string* tmp = env_value(in, "TMPDIR");
        std::string dir = tmp ? *tmp : "/tmp";
        while (dir.size() > 1 && dir.back() == '/') {
            dir.pop_back();
        }
        c.socket =
            Setting<std::string>{(dir == "/" ? "" : dir) + "/boundary-audit.sock", "default"};
    }
    if (c.socket->value.empty() || c.socket->value.front() != '/') {
        return at(c.socket->origin, "the Coder agent's socket path must be absolute, got '" +
                                        printable(c.socket->value) + "'");
    }
    if (c.socket->value.size() > 107) {
        return at(c.socket->origin,
                  "the Coder agent's socket path is longer than a unix "
                  "socket address allows (107 bytes)");
    }
    if (in.flags.log_proxy_drop_counts) {
        c.drop_counts = {*in.flags.log_proxy_drop_counts, "--log-proxy-drop-counts"};
    } else if (b.log_proxy_drop_counts) {
        c.drop_counts = *b.log_proxy_drop_counts;
    }
    return {};
}

/// A header name (RFC 9110 token).
Status check_header(const Setting<std::string>& h) {
    const bool ok = !h.value.empty() && std::all_of(h.value.begin(), h.value.end(), is_tchar);
    if (!ok) {
        return at(h.origin, "'" + printable(h.value) + "' is not an HTTP header name");
    }
    return {};
}

/// The targets when none is given: the AI Gateway's paths on CODER_AGENT_URL's host.
Status default_targets(const Inputs& in, const std::string& enabled_by,
                       std::vector<RuleSource>& out) {
    const std::string* url = env_value(in, "CODER_AGENT_URL");
    if (!url) {
        return at(enabled_by,
                  "session correlation needs a target: set session_id_inject_targets or "
                  "--session-id-inject-target, or CODER_AGENT_URL (the Coder deployment's URL)");
    }
    auto parsed = parse_request("GET", trim(*url));
    if (!parsed) {
        return at("CODER_AGENT_URL", "'" + printable(*url) + "': " + parsed.error().message);
    }
    const std::string domain = "domain=" + parsed->host.text;
    out.push_back({domain + " path=/api/v2/aibridge/*", "CODER_AGENT_URL"});
    out.push_back({domain + " path=/api/v2/ai-gateway/*", "CODER_AGENT_URL"});
    return {};
}

/// The targets as allow rules with their methods cleared (a target never looks at them).
Result<std::shared_ptr<const Engine>> target_engine(const std::vector<RuleSource>& targets) {
    auto rules = parse_rules(targets);
    if (!rules) {
        return rules.error();
    }
    for (Rule& r : *rules) {
        r.methods.clear();
    }
    return std::make_shared<const Engine>(std::move(*rules), std::vector<Rule>{});
}

void collect_targets(const Inputs& in, const BoundaryOnly& b, std::vector<RuleSource>& out) {
    if (!in.flags.session_id_inject_targets.empty()) {
        for (const std::string& t : in.flags.session_id_inject_targets) {
            out.push_back({t, "--session-id-inject-target"});
        }
        return;
    }
    if (const auto* v = env_value(in, "BOUNDARY_SESSION_ID_INJECT_TARGET")) {
        int line = 0;
        for (std::string_view text : split(*v, '\n')) {
            ++line;
            if (!trim(text).empty()) {
                out.push_back({std::string(trim(text)),
                               "BOUNDARY_SESSION_ID_INJECT_TARGET line " + std::to_string(line)});
            }
        }
        return;
    }
    for (const Setting<std::string>& t : b.session_id_inject_targets) {
        out.push_back({t.value, t.origin});
    }
}

Status apply_correlation(const Inputs& in, const BoundaryOnly& b, CorrelationSettings& c) {
    auto enabled =
        bool_setting(in, in.flags.enable_session_correlation, "--enable-session-correlation",
                     "BOUNDARY_SESSION_CORRELATION_ENABLED", b.session_correlation_enabled, false);
    if (!enabled) {
        return enabled.error();
    }
    c.enabled = *enabled;
    if (b.session_id_header_name) {
        c.session_header = *b.session_id_header_name;
    }
    if (b.sequence_number_header_name) {
        c.sequence_header = *b.sequence_number_header_name;
    }
    for (const auto* h : {&c.session_header, &c.sequence_header}) {
        if (auto ok = check_header(*h); !ok) {
            return ok;
        }
    }
    if (to_lower(c.session_header.value) == to_lower(c.sequence_header.value)) {
        return at(c.sequence_header.origin,
                  "the sequence number header must differ from the "
                  "session id header");
    }
    collect_targets(in, b, c.targets);
    if (!c.enabled.value) {
        return {};
    }
    if (c.targets.empty()) {
        if (auto ok = default_targets(in, c.enabled.origin, c.targets); !ok) {
            return ok;
        }
    }
    auto engine = target_engine(c.targets);
    if (!engine) {
        return engine.error();
    }
    c.engine = std::move(*engine);
    return {};
}

}  // namespace

Status apply_coder_settings(const Inputs& in, const FileConfig& file, Settings& s) {
    if (!s.disable_audit_logs.value) {
        if (auto ok = apply_socket(in, file.boundary_only, s.coder); !ok) {
            return ok;
        }
    }
    return apply_correlation(in, file.boundary_only, s.correlation);
}

}  // namespace lj::policy
