// SPDX-License-Identifier: Apache-2.0
// The YAML config file (DESIGN §4), parsed from a string: policy/ does no file I/O. Every key
// of boundary's config.yaml is accepted, plus landjail's own. Unknown keys, wrong types and
// bad rules are errors located at file:line:column that quote the offending text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/result.hpp"

namespace lj::policy {

/// A rule as written somewhere, before it is parsed. `origin` says where: "file:line:col",
/// "--allow", "LANDJAIL_ALLOW line 2", "BOUNDARY_ALLOW", "profile claude-code", …
struct RuleSource {
    std::string text;
    std::string origin;
};

/// A value and the place it came from ("default", "--log-level", "PROXY_PORT", "f.yaml:3:12").
template <class T>
struct Setting {
    T value{};
    std::string origin = "default";
};

struct HttpSinkConfig {
    std::string url;
    int batch_size = 100;
    int flush_interval_ms = 1000;
    std::string spool_dir;  ///< empty: LOG_DIR/audit-spool when log_dir is set
};

struct AuditConfig {
    std::optional<Setting<std::string>> file;     ///< JSON-lines file
    std::optional<Setting<std::string>> socket;   ///< unix socket path
    std::optional<HttpSinkConfig> http;           ///< HTTP collector
    std::optional<Setting<bool>> stderr_denials;  ///< warn-level logfmt line per denial
    std::optional<Setting<bool>> required;        ///< refuse requests (503) while the trail fails
};

struct TlsConfig {
    std::vector<std::string> passthrough;  ///< domain patterns tunnelled without interception
    std::optional<Setting<std::string>> upstream_ca;
    /// A CONNECT to port 443 that no rule can allow is intercepted (TLS with the local CA,
    /// nothing sent upstream) so that each request inside is denied and audited with its
    /// method and full URL; false: refused at CONNECT (403), as before. Default true.
    std::optional<Setting<bool>> intercept_denied;
};

struct Labels {
    std::optional<Setting<std::string>> workspace_id, workspace_name, owner, template_id,
        template_version_id;
};

/// Keys of newer boundary releases: the Coder agent's audit socket and session correlation
/// (policy::Settings acts on them), and upstream_proxy (accepted, warned about, no effect).
struct BoundaryOnly {
    std::optional<Setting<std::string>> upstream_proxy;         ///< chaining to another proxy
    std::optional<Setting<std::string>> log_proxy_socket_path;  ///< the Coder agent's socket
    std::optional<Setting<bool>> log_proxy_drop_counts;         ///< landjail's: tag-2 frames
    std::optional<Setting<bool>> session_correlation_enabled;   ///< header injection
    std::vector<Setting<std::string>> session_id_inject_targets;
    std::optional<Setting<std::string>> session_id_header_name, sequence_number_header_name;
};

/// The largest max_connections accepted (the proxy's descriptor limit is at most 2^20).
inline constexpr std::uint32_t kMaxConnectionsLimit = 1U << 20;

/// The contents of one config file. Only what the file sets is present.
struct FileConfig {
    std::string file;  ///< the name used in error messages and origins
    std::vector<RuleSource> allowlist;
    std::vector<RuleSource> denylist;
    std::optional<Setting<std::string>> jail_type;  ///< "landjail" | "nsjail"
    std::optional<Setting<std::string>> log_dir;
    std::optional<Setting<std::uint16_t>> proxy_port;
    std::optional<Setting<std::string>> log_level;  ///< error|warn|info|debug
    std::optional<Setting<bool>> no_user_namespace, use_real_dns, pprof_enabled, disable_audit_logs,
        configure_dns_for_local_stub_resolver;
    std::optional<Setting<std::uint16_t>> pprof_port;
    /// The interception CA's directory (landjail's key; --ca-dir and LANDJAIL_CA_DIR win).
    std::optional<Setting<std::string>> ca_dir;
    /// "refuse" (default) | "literal": what to do with a request path whose meaning depends on
    /// the origin's decoder when rules constrain paths (policy::path_ambiguity).
    std::optional<Setting<std::string>> ambiguous_paths;
    /// Client connections the proxy serves at once (1 .. kMaxConnectionsLimit).
    std::optional<Setting<std::uint32_t>> max_connections;
    AuditConfig audit;
    TlsConfig tls;
    Labels labels;
    BoundaryOnly boundary_only;
};

/// A true/false word as boundary's flag library reads it (Go's strconv.ParseBool: 1, t,
/// true, 0, f, false) and as YAML writes it (yes, no, on, off, y, n), in any letter case;
/// nullopt for anything else. Flags (--flag=VALUE), environment variables and config keys
/// all read booleans with it.
std::optional<bool> parse_bool_word(std::string_view word);

/// Parses a config file's text. `file` names it in errors ("bad.yaml:4:3: unknown key
/// 'allowlst' (did you mean 'allowlist'?)"). Every rule in allowlist/denylist is parsed here,
/// so a bad rule is reported with its location and text. An empty document is a valid, empty
/// config. YAML syntax errors keep yaml-cpp's position.
Result<FileConfig> parse_config(std::string_view text, std::string_view file);

/// Parses a profile (--profile): the config format, with only allowlist and denylist allowed
/// at the top level; any other key is an error at its location.
Result<FileConfig> parse_profile(std::string_view text, std::string_view file);

}  // namespace lj::policy
