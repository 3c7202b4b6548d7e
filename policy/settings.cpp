// SPDX-License-Identifier: Apache-2.0
#include "policy/settings.hpp"

#include <charconv>

#include "policy/request.hpp"
#include "policy/rule.hpp"
#include "policy/text.hpp"

namespace lj::policy {
namespace {

const std::string* env_get(const Inputs& in, const std::string& name) {
    auto it = in.env.find(name);
    return it == in.env.end() ? nullptr : &it->second;
}

/// The first of the flag and the environment variables that is set, with its origin.
std::optional<Setting<std::string>> from_flag_or_env(const Inputs& in,
                                                     const std::optional<std::string>& flag,
                                                     const std::string& flag_name,
                                                     std::initializer_list<const char*> vars) {
    if (flag) {
        return Setting<std::string>{*flag, flag_name};
    }
    for (const char* var : vars) {
        if (const std::string* v = env_get(in, var); v && !v->empty()) {
            return Setting<std::string>{*v, var};
        }
    }
    return std::nullopt;
}

Error origin_error(const std::string& origin, const std::string& msg) {
    return make_error(origin + ": " + msg);
}

/// Rule sources from a variable holding one rule per line (blank lines and # comments skipped).
void env_rule_lines(const Inputs& in, const char* var, std::vector<RuleSource>& out) {
    const std::string* value = env_get(in, var);
    if (!value) {
        return;
    }
    int line = 0;
    for (std::string_view text : split(*value, '\n')) {
        ++line;
        text = trim(text);
        if (text.empty() || text.front() == '#') {
            continue;
        }
        out.push_back({std::string(text), std::string(var) + " line " + std::to_string(line)});
    }
}

Result<bool> parse_bool_text(const std::string& value, const std::string& origin) {
    const std::string v = to_lower(value);
    if (v == "1" || v == "true" || v == "yes" || v == "on") {
        return true;
    }
    if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) {
        return false;
    }
    return origin_error(origin, "expected true or false, got '" + printable(value) + "'");
}

void apply_labels(const Inputs& in, Labels& labels) {
    auto fill = [&](std::optional<Setting<std::string>>& slot, const char* var) {
        if (slot) {
            return;  // the config file's value wins over the CODER_* default
        }
        if (const std::string* v = env_get(in, var); v && !v->empty()) {
            slot = Setting<std::string>{*v, var};
        }
    };
    fill(labels.workspace_id, "CODER_WORKSPACE_ID");
    fill(labels.workspace_name, "CODER_WORKSPACE_NAME");
    fill(labels.owner, "CODER_WORKSPACE_OWNER_NAME");
    fill(labels.template_id, "CODER_WORKSPACE_TEMPLATE_ID");
    fill(labels.template_version_id, "CODER_WORKSPACE_TEMPLATE_VERSION_ID");
}

/// Collects allow and deny rule sources in their documented order.
void collect_rules(const Inputs& in, std::vector<RuleSource>& allow, std::vector<RuleSource>& deny,
                   std::vector<std::string>& warnings) {
    if (in.file) {
        allow = in.file->allowlist;
        deny = in.file->denylist;
    }
    for (const FileConfig& profile : in.profiles) {
        allow.insert(allow.end(), profile.allowlist.begin(), profile.allowlist.end());
        deny.insert(deny.end(), profile.denylist.begin(), profile.denylist.end());
    }
    env_rule_lines(in, "LANDJAIL_ALLOW", allow);
    if (const std::string* v = env_get(in, "BOUNDARY_ALLOW")) {
        if (trim(*v).empty()) {
            warnings.emplace_back("BOUNDARY_ALLOW is set but empty; it adds no rule");
        } else {
            allow.push_back({*v, "BOUNDARY_ALLOW"});
        }
    }
    for (const std::string& r : in.flags.allow) {
        allow.push_back({r, "--allow"});
    }
    env_rule_lines(in, "LANDJAIL_DENY", deny);
    for (const std::string& r : in.flags.deny) {
        deny.push_back({r, "--deny"});
    }
}

}  // namespace

Result<std::vector<Rule>> parse_rules(const std::vector<RuleSource>& sources) {
    std::vector<Rule> rules;
    rules.reserve(sources.size());
    for (const RuleSource& source : sources) {
        auto rule = parse_rule(source.text, source.origin);
        if (!rule) {
            return origin_error(source.origin, rule.error().message);
        }
        rules.push_back(std::move(*rule));
    }
    return rules;
}

namespace {

/// Flags whose value is a name or path: an empty value is a mistake, never "the default".
Status check_flag_values(const FlagInputs& f) {
    const std::pair<const std::optional<std::string>*, const char*> flags[] = {
        {&f.log_level, "--log-level"},
        {&f.log_dir, "--log-dir"},
        {&f.proxy_port, "--proxy-port"},
        {&f.jail_type, "--jail-type"},
        {&f.audit_log, "--audit-log"},
        {&f.audit_socket, "--audit-socket"},
        {&f.max_connections, "--max-connections"},
    };
    for (const auto& [value, name] : flags) {
        if (*value && value->value_or("").empty()) {
            return make_error(std::string(name) + " needs a non-empty value");
        }
    }
    return {};
}

/// One warning per newer-boundary key that would change what boundary does.
void warn_boundary_only(const BoundaryOnly& b, std::vector<std::string>& warnings) {
    if (b.upstream_proxy && !trim(b.upstream_proxy->value).empty()) {
        warnings.push_back("upstream_proxy (" + b.upstream_proxy->origin +
                           ") is not supported: landjail-proxy connects to origins directly");
    }
}

std::string join_path(std::string dir, std::string_view file) {
    while (dir.size() > 1 && dir.back() == '/') {
        dir.pop_back();
    }
    return dir + (dir == "/" ? "" : "/") + std::string(file);
}

}  // namespace

namespace {

/// log_level, log_dir, proxy_port and jail_type: flag > environment > file > default.
Status apply_scalars(const Inputs& in, const FileConfig& file, Settings& s) {
    if (auto v = from_flag_or_env(in, in.flags.log_level, "--log-level",
                                  {"LANDJAIL_LOG_LEVEL", "BOUNDARY_LOG_LEVEL"})) {
        if (v->value != "error" && v->value != "warn" && v->value != "info" &&
            v->value != "debug") {
            return origin_error(v->origin, "log level '" + printable(v->value) +
                                               "' is not one of error, warn, info, debug");
        }
        s.log_level = *v;
    } else if (file.log_level) {
        s.log_level = *file.log_level;
    }

    if (auto v = from_flag_or_env(in, in.flags.log_dir, "--log-dir",
                                  {"LANDJAIL_LOG_DIR", "BOUNDARY_LOG_DIR"})) {
        s.log_dir = *v;
    } else if (file.log_dir) {
        s.log_dir = file.log_dir;
    }

    if (auto v = from_flag_or_env(in, in.flags.proxy_port, "--proxy-port",
                                  {"LANDJAIL_PROXY_PORT", "PROXY_PORT"})) {
        auto port = parse_port(v->value, true);
        if (!port) {
            return origin_error(v->origin, port.error().message);
        }
        s.proxy_port = {*port, v->origin};
    } else if (file.proxy_port) {
        s.proxy_port = *file.proxy_port;
    }

    if (auto v = from_flag_or_env(in, in.flags.jail_type, "--jail-type", {"BOUNDARY_JAIL_TYPE"})) {
        if (v->value != "landjail" && v->value != "nsjail") {
            return origin_error(v->origin, "jail type '" + printable(v->value) +
                                               "' is not one of landjail, nsjail");
        }
        s.jail_type = *v;
    } else if (file.jail_type) {
        s.jail_type = *file.jail_type;
    }
    if (s.jail_type.value == "nsjail") {
        s.jail_warnings.push_back(
            "jail_type nsjail (from " + s.jail_type.origin +
            ") is not available: landjail runs its own unprivileged jail instead");
    }
    return {};
}

/// max_connections: --max-connections > the file > none (the proxy's own default).
Status apply_limits(const Inputs& in, const FileConfig& file, Settings& s) {
    if (const auto& flag = in.flags.max_connections) {
        std::uint32_t n = 0;
        const char* end = flag->data() + flag->size();
        auto [ptr, ec] = std::from_chars(flag->data(), end, n);
        if (ec != std::errc() || ptr != end || n < 1 || n > kMaxConnectionsLimit) {
            return make_error("--max-connections '" + printable(*flag) +
                              "': expected a whole number from 1 to " +
                              std::to_string(kMaxConnectionsLimit));
        }
        s.max_connections = Setting<std::uint32_t>{n, "--max-connections"};
    } else if (file.max_connections) {
        s.max_connections = file.max_connections;
    }
    return {};
}

/// audit.required needs a trail to require: a sink other than stderr (disable_audit_logs
/// turns off only the Coder agent's copy).
Status check_required(const Settings& s) {
    if (!s.audit.required || !s.audit.required->value) {
        return {};
    }
    const std::string what = "audit.required (from " + s.audit.required->origin + ")";
    if (!s.audit_file && !s.audit.socket && !s.audit.http) {
        return make_error(what +
                          ": there is no audit trail to require; set --audit-log, "
                          "log_dir, audit.file, audit.socket or audit.http");
    }
    return {};
}

/// disable_audit_logs, the audit sinks (the file: --audit-log, audit.file, LOG_DIR/
/// audit.jsonl), tls and the labels.
Status apply_audit(const Inputs& in, const FileConfig& file, Settings& s) {
    if (in.flags.disable_audit_logs) {
        s.disable_audit_logs = {true, "--disable-audit-logs"};
    } else if (const std::string* v = env_get(in, "DISABLE_AUDIT_LOGS")) {
        auto b = parse_bool_text(*v, "DISABLE_AUDIT_LOGS");
        if (!b) {
            return b.error();
        }
        s.disable_audit_logs = {*b, "DISABLE_AUDIT_LOGS"};
    } else if (file.disable_audit_logs) {
        s.disable_audit_logs = *file.disable_audit_logs;
    }

    s.audit = file.audit;
    if (in.flags.audit_socket) {
        s.audit.socket = Setting<std::string>{*in.flags.audit_socket, "--audit-socket"};
    }
    if (in.flags.audit_required) {
        s.audit.required = Setting<bool>{true, "--audit-required"};
    }
    s.tls = file.tls;
    s.labels = file.labels;
    apply_labels(in, s.labels);
    if (in.flags.audit_log) {
        s.audit_file = Setting<std::string>{*in.flags.audit_log, "--audit-log"};
    } else if (file.audit.file) {
        s.audit_file = file.audit.file;
    } else if (s.log_dir) {
        s.audit_file = Setting<std::string>{join_path(s.log_dir->value, "audit.jsonl"),
                                            "log_dir (" + s.log_dir->origin + ")"};
    }
    return check_required(s);
}

/// The policy engine from every source's rules, in their documented order.
Result<std::shared_ptr<const Engine>> build_engine(const Inputs& in, bool literal_paths,
                                                   std::vector<std::string>& warnings) {
    std::vector<RuleSource> allow_src;
    std::vector<RuleSource> deny_src;
    collect_rules(in, allow_src, deny_src, warnings);
    auto allow = parse_rules(allow_src);
    if (!allow) {
        return allow.error();
    }
    auto deny = parse_rules(deny_src);
    if (!deny) {
        return deny.error();
    }
    return std::make_shared<const Engine>(std::move(*allow), std::move(*deny), literal_paths);
}

}  // namespace

Result<Settings> build_settings(const Inputs& in) {
    if (auto ok = check_flag_values(in.flags); !ok) {
        return ok.error();
    }
    Settings s;
    const FileConfig empty;
    const FileConfig& file = in.file ? *in.file : empty;
    if (in.file) {
        s.config_file = in.file->file;
    }
    if (auto ok = apply_scalars(in, file, s); !ok) {
        return ok.error();
    }
    if (auto ok = apply_audit(in, file, s); !ok) {
        return ok.error();
    }
    if (auto ok = apply_limits(in, file, s); !ok) {
        return ok.error();
    }
    if (auto ok = apply_coder_settings(in, file, s); !ok) {
        return ok.error();
    }
    warn_boundary_only(file.boundary_only, s.warnings);
    if (file.pprof_enabled && file.pprof_enabled->value) {
        s.warnings.push_back("pprof_enabled (" + file.pprof_enabled->origin +
                             ") has no effect: landjail has no pprof server");
    }
    if (file.ambiguous_paths) {
        s.ambiguous_paths = *file.ambiguous_paths;
    }
    auto engine = build_engine(in, s.ambiguous_paths.value == "literal", s.warnings);
    if (!engine) {
        return engine.error();
    }
    s.engine = std::move(*engine);
    return s;
}

}  // namespace lj::policy
