// SPDX-License-Identifier: Apache-2.0
// The effective configuration: defaults < config file < environment < flags, merged by a pure
// function from explicit inputs (the caller reads files and the environment), validated once
// into an immutable Settings with the origin of every value, and the policy Engine built from
// the accumulated rules (file allowlist, then LANDJAIL_ALLOW, then BOUNDARY_ALLOW, then
// --allow; likewise denylist then LANDJAIL_DENY then --deny).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/config.hpp"
#include "policy/engine.hpp"
#include "policy/result.hpp"

namespace lj::policy {

/// Values given on the command line (absent = not given).
struct FlagInputs {
    std::vector<std::string> allow;
    std::vector<std::string> deny;
    std::vector<std::string> profiles;  ///< --profile NAME or PATH, in order
    std::optional<std::string> log_level, log_dir, proxy_port, jail_type, audit_log, audit_socket;
    std::optional<std::string> max_connections;  ///< --max-connections N
    std::optional<std::string> ca_dir;           ///< --ca-dir DIR
    // Flags also given as --flag=false: absent = not given, so a lower source decides.
    std::optional<bool> disable_audit_logs;
    std::optional<bool> audit_required;  ///< --audit-required
    // boundary's flags that landjail accepts without effect (reported by `landjail check`).
    std::optional<bool> pprof, use_real_dns, no_user_namespace;
    std::optional<std::string> pprof_port, upstream_proxy;
    // The Coder agent's audit socket and session correlation (boundary's flags).
    std::optional<std::string> log_proxy_socket_path;
    std::optional<bool> log_proxy_drop_counts;
    std::optional<bool> enable_session_correlation;
    std::vector<std::string> session_id_inject_targets;
};

/// Everything build_settings looks at.
struct Inputs {
    std::optional<FileConfig> file;    ///< the discovered config file, if any
    std::vector<FileConfig> profiles;  ///< --profile files, merged after the config file
    std::map<std::string, std::string>
        env;  ///< the process environment (only known names are read)
    FlagInputs flags;
};

/// Where the audit trail is also sent as boundary sends it: the Coder workspace agent's unix
/// socket (DESIGN §6). Used only when the path exists when the trail starts.
struct CoderAgentSettings {
    /// --log-proxy-socket-path > CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH >
    /// log_proxy_socket_path > $TMPDIR/boundary-audit.sock (origin "default"); absent when
    /// disable_audit_logs turns the forwarding off.
    std::optional<Setting<std::string>> socket;
    Setting<bool> drop_counts{false};  ///< tag-2 frames with drop counts (newer agents only)
};

/// Session correlation (Coder AI Gateway): allowed requests that match a target get the
/// session id and their audit event's sequence number in two headers.
struct CorrelationSettings {
    Setting<bool> enabled{false};
    std::vector<RuleSource> targets;  ///< allow-rule syntax; the method is ignored
    Setting<std::string> session_header{"X-Coder-Agent-Firewall-Session-Id"};
    Setting<std::string> sequence_header{"X-Coder-Agent-Firewall-Sequence-Number"};
    std::shared_ptr<const Engine> engine;  ///< the targets as allow rules; set when enabled
};

struct Settings {
    std::optional<std::string> config_file;  ///< path of the config file used
    Setting<std::string> log_level{"warn"};
    std::optional<Setting<std::string>> log_dir;
    Setting<std::uint16_t> proxy_port{0};  ///< 0: a free ephemeral port
    Setting<std::string> jail_type{"landjail"};
    Setting<bool> disable_audit_logs{false};
    /// The interception CA's directory: --ca-dir, LANDJAIL_CA_DIR, ca_dir,
    /// $XDG_CONFIG_HOME/landjail, ~/.config/landjail ("" when no home is known: the caller
    /// fills in the passwd entry's).
    Setting<std::string> ca_dir{""};
    // boundary's settings that have no effect in landjail, kept with their origin for
    // `landjail check`: pprof (no pprof server), use_real_dns (the jail has no DNS at all),
    // no_user_namespace (landjail never uses namespaces), upstream_proxy (not supported).
    Setting<bool> pprof_enabled{false};
    Setting<std::uint16_t> pprof_port{6060};
    Setting<bool> use_real_dns{false};
    Setting<bool> no_user_namespace{false};
    std::optional<Setting<std::string>> upstream_proxy;
    Setting<std::string> ambiguous_paths{"refuse"};  ///< refuse | literal (FileConfig)
    /// --max-connections, then max_connections; absent: the proxy derives it from its
    /// descriptor limit.
    std::optional<Setting<std::uint32_t>> max_connections;
    std::optional<Setting<std::string>>
        audit_file;  ///< --audit-log, audit.file, LOG_DIR/audit.jsonl
    AuditConfig audit;
    TlsConfig tls;
    Labels labels;
    CoderAgentSettings coder;
    CorrelationSettings correlation;
    std::vector<std::string> warnings;  ///< accepted-but-ignored keys (the proxy prints these)
    /// One per allow or deny rule without domain= (it matches every host); `check --strict`
    /// refuses them. Also in `warnings`.
    std::vector<std::string> any_host_rules;
    std::vector<std::string> jail_warnings;  ///< about the jail (jail_type nsjail): landjail's
    std::shared_ptr<const Engine> engine;
};

/// Environment variables read (besides CODER_* labels): LANDJAIL_ALLOW (one rule per line,
/// blank lines and '#' comments skipped), BOUNDARY_ALLOW (one rule), LANDJAIL_DENY (one per
/// line), LANDJAIL_LOG_LEVEL / BOUNDARY_LOG_LEVEL, LANDJAIL_LOG_DIR / BOUNDARY_LOG_DIR,
/// LANDJAIL_PROXY_PORT / PROXY_PORT, BOUNDARY_JAIL_TYPE, DISABLE_AUDIT_LOGS, BOUNDARY_PPROF,
/// BOUNDARY_PPROF_PORT, BOUNDARY_USE_REAL_DNS, BOUNDARY_NO_USER_NAMESPACE,
/// BOUNDARY_UPSTREAM_PROXY, LANDJAIL_CA_DIR, XDG_CONFIG_HOME and HOME. As in boundary, a
/// variable set to "" counts as not set; log levels are read in any letter case.
Result<Settings> build_settings(const Inputs& inputs);

/// The Coder agent socket and session correlation settings (policy/coder_settings.cpp):
/// flag > environment > file > default, as for the other settings. Errors: an empty or
/// relative socket path, a bad boolean, a bad target rule, a bad header name, correlation
/// enabled with no target and no CODER_AGENT_URL.
Status apply_coder_settings(const Inputs& inputs, const FileConfig& file, Settings& settings);

/// A boolean: the flag, else variable `var` when set to something other than "" (boundary's
/// reading; its words as parse_bool_word), else the file's value, else `fallback`. Errors
/// name the variable.
Result<Setting<bool>> bool_setting(const Inputs& in, const std::optional<bool>& flag,
                                   const char* flag_name, const char* var,
                                   const std::optional<Setting<bool>>& file, bool fallback);

/// Parses every source's rules into Rules (errors name the origin and the rule text).
Result<std::vector<Rule>> parse_rules(const std::vector<RuleSource>& sources);

}  // namespace lj::policy
