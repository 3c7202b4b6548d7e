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
    if (const std::optional<bool> b = parse_bool_word(value)) {
        return *b;
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

Result<Setting<bool>> bool_setting(const Inputs& in, const std::optional<bool>& flag,
                                   const char* flag_name, const char* var,
                                   const std::optional<Setting<bool>>& file, bool fallback) {
    if (flag) {
        return Setting<bool>{*flag, flag_name};
    }
    if (const std::string* v = env_get(in, var); v && !v->empty()) {
        auto b = parse_bool_text(*v, var);
        if (!b) {
            return b.error();
        }
        return Setting<bool>{*b, var};
    }
    return file ? *file : Setting<bool>{fallback};
}

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
        {&f.ca_dir, "--ca-dir"},
        {&f.pprof_port, "--pprof-port"},
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
        v->value = to_lower(v->value);  // boundary reads WARN as warn
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
    auto disable = bool_setting(in, in.flags.disable_audit_logs, "--disable-audit-logs",
                                "DISABLE_AUDIT_LOGS", file.disable_audit_logs, false);
    if (!disable) {
        return disable.error();
    }
    s.disable_audit_logs = *disable;

    s.audit = file.audit;
    if (in.flags.audit_socket) {
        s.audit.socket = Setting<std::string>{*in.flags.audit_socket, "--audit-socket"};
    }
    if (in.flags.audit_required) {
        s.audit.required = Setting<bool>{*in.flags.audit_required, "--audit-required"};
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

/// boundary's settings without effect here: pprof_enabled, pprof_port, use_real_dns,
/// no_user_namespace (flag > BOUNDARY_* > file > default) and upstream_proxy, each with its
/// origin; one warning when pprof is on, one when an upstream proxy is set (jail_warnings:
/// landjail prints them; its proxy, which is not given these flags, does not repeat them).
Status apply_boundary(const Inputs& in, const FileConfig& file, Settings& s) {
    const struct {
        const std::optional<bool>& flag;
        const char *name, *var;
        const std::optional<Setting<bool>>& file;
        Setting<bool>& out;
    } bools[] = {
        {in.flags.pprof, "--pprof", "BOUNDARY_PPROF", file.pprof_enabled, s.pprof_enabled},
        {in.flags.use_real_dns, "--use-real-dns", "BOUNDARY_USE_REAL_DNS", file.use_real_dns,
         s.use_real_dns},
        {in.flags.no_user_namespace, "--no-user-namespace", "BOUNDARY_NO_USER_NAMESPACE",
         file.no_user_namespace, s.no_user_namespace},
    };
    for (const auto& b : bools) {
        auto v = bool_setting(in, b.flag, b.name, b.var, b.file, false);
        if (!v) {
            return v.error();
        }
        b.out = *v;
    }
    if (auto v =
            from_flag_or_env(in, in.flags.pprof_port, "--pprof-port", {"BOUNDARY_PPROF_PORT"})) {
        auto port = parse_port(v->value, false);
        if (!port) {
            return origin_error(v->origin, port.error().message);
        }
        s.pprof_port = {*port, v->origin};
    } else if (file.pprof_port) {
        s.pprof_port = *file.pprof_port;
    }
    if (s.pprof_enabled.value) {
        s.jail_warnings.push_back("pprof (from " + s.pprof_enabled.origin +
                                  ") has no effect: landjail has no pprof server");
    }
    // The file's upstream_proxy is warned about with the other newer keys (warn_boundary_only).
    const auto& in_file = file.boundary_only.upstream_proxy;
    auto upstream = from_flag_or_env(in, in.flags.upstream_proxy, "--upstream-proxy",
                                     {"BOUNDARY_UPSTREAM_PROXY"});
    if (upstream && !trim(upstream->value).empty()) {
        s.upstream_proxy = upstream;
        s.jail_warnings.push_back(
            "upstream_proxy (from " + upstream->origin +
            ") is not supported: landjail-proxy connects to origins directly");
    } else if (!upstream && in_file && !trim(in_file->value).empty()) {
        s.upstream_proxy = in_file;
    }
    return {};
}

/// The CA directory: --ca-dir > LANDJAIL_CA_DIR > ca_dir > $XDG_CONFIG_HOME/landjail >
/// $HOME/.config/landjail (as boundary keeps its CA under $XDG_CONFIG_HOME or ~/.config).
void apply_ca_dir(const Inputs& in, const FileConfig& file, Settings& s) {
    if (auto v = from_flag_or_env(in, in.flags.ca_dir, "--ca-dir", {"LANDJAIL_CA_DIR"})) {
        s.ca_dir = *v;
    } else if (file.ca_dir) {
        s.ca_dir = *file.ca_dir;
    } else if (const std::string* x = env_get(in, "XDG_CONFIG_HOME"); x && !x->empty()) {
        s.ca_dir = {join_path(*x, "landjail"), "XDG_CONFIG_HOME"};
    } else if (const std::string* h = env_get(in, "HOME"); h && !h->empty()) {
        s.ca_dir = {join_path(join_path(*h, ".config"), "landjail"), "default (HOME)"};
    }
}

/// One warning per allow rule without domain=, which matches every host.
void warn_any_host(const Engine& engine, Settings& s) {
    for (const Rule& r : engine.allow_rules()) {
        if (r.host) {
            continue;
        }
        s.any_host_rules.push_back("allow rule '" + r.text + "' (from " + r.origin +
                                   ") has no domain= key: it matches every host (add domain= "
                                   "to name the hosts, or write domain=* to say so)");
        s.warnings.push_back(s.any_host_rules.back());
    }
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
    if (auto ok = apply_boundary(in, file, s); !ok) {
        return ok.error();
    }
    apply_ca_dir(in, file, s);
    if (file.ambiguous_paths) {
        s.ambiguous_paths = *file.ambiguous_paths;
    }
    auto engine = build_engine(in, s.ambiguous_paths.value == "literal", s.warnings);
    if (!engine) {
        return engine.error();
    }
    s.engine = std::move(*engine);
    warn_any_host(*s.engine, s);
    return s;
}

}  // namespace lj::policy
