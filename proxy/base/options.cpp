// SPDX-License-Identifier: Apache-2.0
#include "proxy/base/options.hpp"

#include <charconv>
#include <type_traits>

namespace lj::proxy {
namespace {

template <class T>
struct MemberOf;
template <class C, class F>
struct MemberOf<F C::*> {
    using Class = C;
};

/// The field a pointer to member names: in SharedOptions or in its FlagInputs.
template <auto M, class Options>
auto& field(Options& o) {
    using C = typename MemberOf<decltype(M)>::Class;
    if constexpr (std::is_same_v<C, policy::FlagInputs>) {
        return o.flags.*M;
    } else {
        return o.*M;
    }
}

/// A flag stores its value ("true" or "false", see parse_options), a repeatable option
/// appends, any other option replaces.
template <auto M>
Status store(SharedOptions& o, const std::string& value) {
    auto& f = field<M>(o);
    using F = std::remove_reference_t<decltype(f)>;
    if constexpr (std::is_same_v<F, std::optional<bool>>) {
        f = flag_on(value);
    } else if constexpr (std::is_same_v<F, std::vector<std::string>>) {
        f.push_back(value);
    } else {
        f = value;
    }
    return {};
}

template <auto M>
std::vector<std::string> values(const SharedOptions& o) {
    const auto& f = field<M>(o);
    using F = std::remove_cvref_t<decltype(f)>;
    if constexpr (std::is_same_v<F, std::optional<bool>>) {
        return f ? std::vector<std::string>{*f ? "true" : "false"} : std::vector<std::string>{};
    } else if constexpr (std::is_same_v<F, std::vector<std::string>>) {
        return f;
    } else {
        return f ? std::vector<std::string>{*f} : std::vector<std::string>{};
    }
}

template <auto M>
constexpr SharedRow row(OptSpec spec) {
    return {spec, &store<M>, &values<M>};
}

/// --max-connections: checked here, kept as text (policy::build_settings reads it).
Status store_max_connections(SharedOptions& o, const std::string& value) {
    auto n = option_number("max-connections", value, 1, policy::kMaxConnectionsLimit);
    if (!n) {
        return n.error();
    }
    o.flags.max_connections = value;
    return {};
}

using F = policy::FlagInputs;
using S = SharedOptions;

const SharedRow kRows[] = {
    row<&S::config>({"config", 'c', "PATH",
                     "read this config file (default: discovered, see FILES in landjail(1))",
                     false}),
    row<&F::allow>({"allow", 'a', "RULE",
                    "allow requests matching RULE, e.g. 'domain=github.com method=GET'", true}),
    row<&F::deny>(
        {"deny", 0, "RULE", "deny requests matching RULE even when an allow rule matches", true}),
    row<&F::profiles>({"profile", 0, "NAME",
                       "add the rules of a shipped profile (claude-code, github, "
                       "package-managers) or of a YAML file given by path",
                       true}),
    row<&F::log_level>({"log-level", 0, "LEVEL", "error, warn (default), info or debug", false}),
    row<&F::audit_log>(
        {"audit-log", 0, "PATH", "write the audit trail (JSON lines) to PATH", false}),
    row<&F::audit_socket>({"audit-socket", 0, "PATH",
                           "also send the audit trail (JSON lines) to the unix stream socket at "
                           "PATH",
                           false}),
    row<&F::disable_audit_logs>({"disable-audit-logs", 0, nullptr,
                                 "send no audit events to the Coder workspace agent (the local "
                                 "trail is kept)",
                                 false}),
    row<&F::log_proxy_socket_path>({"log-proxy-socket-path", 0, "PATH",
                                    "also send the audit trail to the Coder workspace agent's "
                                    "socket at PATH when it exists (default "
                                    "$TMPDIR/boundary-audit.sock)",
                                    false}),
    row<&F::log_proxy_drop_counts>({"log-proxy-drop-counts", 0, nullptr,
                                    "send the Coder agent tag-2 frames that carry drop counts "
                                    "(agents from March 2026 on)",
                                    false}),
    row<&F::enable_session_correlation>(
        {"enable-session-correlation", 0, nullptr,
         "set the session id and sequence number headers on requests to the targets", false}),
    row<&F::session_id_inject_targets>(
        {"session-id-inject-target", 0, "RULE",
         "a request that gets the correlation headers (allow-rule syntax, method ignored)", true}),
    row<&F::audit_required>({"audit-required", 0, nullptr,
                             "refuse requests (503) while the audit trail cannot be written",
                             false}),
    row<&S::resolve>({"resolve", 0, "HOST:PORT:ADDR[:PORT2]",
                      "the proxy connects to ADDR (port PORT2) for HOST:PORT instead of resolving "
                      "HOST",
                      true}),
    row<&S::upstream_ca>({"upstream-ca", 0, "FILE",
                          "also trust the CA certificates in FILE when verifying upstream servers",
                          false}),
    {{"max-connections", 0, "N",
      "serve at most N client connections at once and answer more with 503 (default: what the "
      "file descriptor limit allows, at most 4096)",
      false},
     &store_max_connections,
     &values<&F::max_connections>},
    row<&F::ca_dir>({"ca-dir", 0, "DIR",
                     "directory of the interception CA (ca.pem, ca-key.pem; default "
                     "$LANDJAIL_CA_DIR, ca_dir, $XDG_CONFIG_HOME/landjail, ~/.config/landjail)",
                     false}),
};

}  // namespace

std::span<const SharedRow> shared_rows() {
    return kRows;
}

std::vector<std::string> forward_shared(const SharedOptions& o) {
    std::vector<std::string> argv;
    for (const SharedRow& r : kRows) {
        for (std::string& v : r.values(o)) {
            if (r.spec.arg) {
                argv.push_back("--" + std::string(r.spec.long_name));
                argv.push_back(std::move(v));
            } else {
                argv.push_back("--" + std::string(r.spec.long_name) + "=" + v);  // =true|false
            }
        }
    }
    return argv;
}

Result<unsigned long> option_number(std::string_view name, const std::string& value,
                                    unsigned long min, unsigned long max) {
    unsigned long n = 0;
    const char* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, n);
    if (value.empty() || ec != std::errc() || ptr != end || n < min || n > max) {
        return make_error("--" + std::string(name) + " '" + value +
                          "': expected a whole number from " + std::to_string(min) + " to " +
                          std::to_string(max));
    }
    return n;
}

}  // namespace lj::proxy
