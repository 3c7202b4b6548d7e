// SPDX-License-Identifier: Apache-2.0
#include "policy/config.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include <yaml-cpp/yaml.h>

#include "policy/request.hpp"
#include "policy/rule.hpp"
#include "policy/text.hpp"

namespace lj::policy {
namespace {

/// Thrown inside this file only, caught by parse_config: the table-driven walk below is
/// much clearer with a non-local exit than with a Result threaded through every handler.
struct ConfigFailure {
    Error error;
};

class Walker {
  public:
    /// `rules_only`: a profile, where the top level may only hold allowlist and denylist.
    Walker(std::string_view file, bool rules_only) : file_(file), rules_only_(rules_only) {}

    [[noreturn]] void fail(const YAML::Node& node, const std::string& msg) const {
        throw ConfigFailure{located(node.Mark(), msg)};
    }
    Error located(const YAML::Mark& mark, std::string msg) const {
        Error e{std::move(msg), file_, 0, 0};
        if (!mark.is_null()) {
            e.line = mark.line + 1;
            e.column = mark.column + 1;
        }
        return e;
    }
    std::string origin(const YAML::Node& node) const {
        const Error e = located(node.Mark(), {});
        return file_ + ":" + std::to_string(e.line) + ":" + std::to_string(e.column);
    }

    std::string describe(const YAML::Node& node) const {
        switch (node.Type()) {
            case YAML::NodeType::Sequence:
                return "a list";
            case YAML::NodeType::Map:
                return "a mapping";
            case YAML::NodeType::Null:
                return "nothing";
            default:
                return "'" + printable(node.Scalar()) + "'";
        }
    }

    std::string scalar(const YAML::Node& node, std::string_view key, std::string_view what) const {
        if (!node.IsScalar()) {
            fail(node,
                 std::string(key) + ": expected " + std::string(what) + ", got " + describe(node));
        }
        return node.Scalar();
    }

    /// A non-empty string (an empty path or label is never what the user meant).
    Setting<std::string> string(const YAML::Node& node, std::string_view key) const {
        std::string value = scalar(node, key, "a string");
        if (value.empty()) {
            fail(node, std::string(key) + ": empty value (remove the key to use the default)");
        }
        return {std::move(value), origin(node)};
    }

    /// A string that may be empty (boundary's keys, whose default is "").
    Setting<std::string> text(const YAML::Node& node, std::string_view key) const {
        return {scalar(node, key, "a string"), origin(node)};
    }

    /// One of `allowed`; `fold_case`: compared (and kept) in lower case, as boundary reads
    /// log_level ("WARN" works).
    Setting<std::string> one_of(const YAML::Node& node, std::string_view key,
                                std::initializer_list<std::string_view> allowed,
                                bool fold_case = false) const {
        std::string value = scalar(node, key, "a string");
        if (fold_case) {
            value = to_lower(value);
        }
        if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
            std::string list;
            for (std::string_view a : allowed) {
                list += (list.empty() ? "" : ", ") + std::string(a);
            }
            fail(node, std::string(key) + ": '" + printable(value) + "' is not one of " + list);
        }
        return {std::move(value), origin(node)};
    }

    Setting<bool> boolean(const YAML::Node& node, std::string_view key) const {
        const std::string value = scalar(node, key, "true or false");
        const std::optional<bool> out = parse_bool_word(value);
        if (!out) {
            fail(node,
                 std::string(key) + ": expected true or false, got '" + printable(value) + "'");
        }
        return {*out, origin(node)};
    }

    Setting<std::uint16_t> port(const YAML::Node& node, std::string_view key,
                                bool allow_zero) const {
        const std::string value = scalar(node, key, "a port number");
        auto p = parse_port(value, allow_zero);
        if (!p) {
            fail(node, std::string(key) + ": " + p.error().message);
        }
        return {*p, origin(node)};
    }

    int integer(const YAML::Node& node, std::string_view key, int min, int max) const {
        const std::string value = scalar(node, key, "a number");
        int out = 0;
        if (!YAML::convert<int>::decode(node, out) || out < min || out > max) {
            fail(node, std::string(key) + ": expected a number from " + std::to_string(min) +
                           " to " + std::to_string(max) + ", got '" + printable(value) + "'");
        }
        return out;
    }

    std::vector<YAML::Node> list(const YAML::Node& node, std::string_view key,
                                 std::string_view what) const {
        std::vector<YAML::Node> out;
        if (node.IsNull()) {
            return out;
        }
        if (!node.IsSequence()) {
            fail(node, std::string(key) + ": expected a list of " + std::string(what) + ", got " +
                           describe(node) + " (write each entry on its own '- ' line)");
        }
        for (const YAML::Node& item : node) {
            out.push_back(item);
        }
        return out;
    }

    std::vector<RuleSource> rules(const YAML::Node& node, std::string_view key) const {
        std::vector<RuleSource> out;
        for (const YAML::Node& item : list(node, key, "rules")) {
            std::string text = item.IsNull() ? std::string() : scalar(item, key, "a rule string");
            RuleSource source{std::move(text), origin(item)};
            if (auto rule = parse_rule(source.text, source.origin); !rule) {
                fail(item, key == "allowlist" || key == "denylist"
                               ? std::string(key) + ": " + rule.error().message
                               : rule.error().message);
            }
            out.push_back(std::move(source));
        }
        return out;
    }

    using Handler = std::function<void(const YAML::Node&)>;

    /// Walks a mapping: every key must be in `handlers` and appear once; null values mean
    /// "not set" and are skipped.
    void mapping(const YAML::Node& node, std::string_view where,
                 const std::map<std::string, Handler>& handlers) const {
        if (!node.IsMap()) {
            fail(node, std::string(where) + ": expected a mapping of keys, got " + describe(node));
        }
        std::map<std::string, int> seen;
        for (auto it = node.begin(); it != node.end(); ++it) {
            // Copies: yaml-cpp's iterator returns a temporary proxy, so references into it dangle.
            const YAML::Node key_node = it->first;
            const YAML::Node value_node = it->second;
            const std::string key = key_node.IsScalar() ? key_node.Scalar() : std::string();
            auto handler = handlers.find(key);
            if (handler == handlers.end()) {
                fail(key_node, unknown_key(key, where, handlers));
            }
            if (rules_only_ && where == "config" && key != "allowlist" && key != "denylist") {
                fail(key_node, "sets '" + key +
                                   "': a profile may only set allowlist and denylist (put "
                                   "other settings in the config file)");
            }
            if (auto [pos, inserted] = seen.emplace(key, key_node.Mark().line + 1); !inserted) {
                fail(key_node, "key '" + key + "' appears twice (first on line " +
                                   std::to_string(pos->second) + ")");
            }
            if (!value_node.IsNull()) {
                handler->second(value_node);
            }
        }
    }

  private:
    static std::size_t distance(std::string_view a, std::string_view b) {
        std::vector<std::size_t> row(b.size() + 1);
        for (std::size_t j = 0; j <= b.size(); ++j) {
            row[j] = j;
        }
        for (std::size_t i = 1; i <= a.size(); ++i) {
            std::size_t diag = row[0];
            row[0] = i;
            for (std::size_t j = 1; j <= b.size(); ++j) {
                const std::size_t up = row[j];
                row[j] =
                    std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
                diag = up;
            }
        }
        return row[b.size()];
    }

    static std::string unknown_key(const std::string& key, std::string_view where,
                                   const std::map<std::string, Handler>& handlers) {
        std::string msg = "unknown key '" + printable(key) + "'";
        if (where != "config") {
            msg += " in " + std::string(where);
        }
        std::string best;
        std::size_t best_d = 3;
        for (const auto& [name, h] : handlers) {
            if (const std::size_t d = distance(key, name); d < best_d) {
                best = name;
                best_d = d;
            }
        }
        if (!best.empty()) {
            return msg + " (did you mean '" + best + "'?)";
        }
        std::string keys;
        for (const auto& [name, h] : handlers) {
            keys += (keys.empty() ? "" : ", ") + name;
        }
        return msg + " (known keys: " + keys + ")";
    }

    std::string file_;
    bool rules_only_ = false;
};

void walk_audit(const Walker& w, const YAML::Node& node, AuditConfig& audit) {
    w.mapping(
        node, "audit",
        {
            {"file", [&](const YAML::Node& n) { audit.file = w.string(n, "audit.file"); }},
            {"socket", [&](const YAML::Node& n) { audit.socket = w.string(n, "audit.socket"); }},
            {"stderr",
             [&](const YAML::Node& n) { audit.stderr_denials = w.boolean(n, "audit.stderr"); }},
            {"required",
             [&](const YAML::Node& n) { audit.required = w.boolean(n, "audit.required"); }},
            {"http",
             [&](const YAML::Node& n) {
                 HttpSinkConfig& http = audit.http.emplace();
                 w.mapping(n, "audit.http",
                           {
                               {"url",
                                [&](const YAML::Node& v) {
                                    http.url = w.string(v, "audit.http.url").value;
                                }},
                               {"batch_size",
                                [&](const YAML::Node& v) {
                                    http.batch_size =
                                        w.integer(v, "audit.http.batch_size", 1, 100000);
                                }},
                               {"flush_interval_ms",
                                [&](const YAML::Node& v) {
                                    http.flush_interval_ms =
                                        w.integer(v, "audit.http.flush_interval_ms", 1, 3600000);
                                }},
                               {"spool_dir",
                                [&](const YAML::Node& v) {
                                    http.spool_dir = w.string(v, "audit.http.spool_dir").value;
                                }},
                           });
                 if (http.url.rfind("http://", 0) != 0 && http.url.rfind("https://", 0) != 0) {
                     w.fail(n, "audit.http: 'url' must be set to an http:// or https:// URL");
                 }
             }},
        });
}

void walk_tls(const Walker& w, const YAML::Node& node, TlsConfig& tls) {
    w.mapping(node, "tls",
              {
                  {"passthrough",
                   [&](const YAML::Node& n) {
                       for (const YAML::Node& item : w.list(n, "tls.passthrough", "domains")) {
                           std::string value = w.scalar(item, "tls.passthrough", "a domain");
                           if (auto rule = parse_rule("domain=" + value); !rule || !rule->host) {
                               w.fail(item, "tls.passthrough: '" + printable(value) + "': " +
                                                (rule ? std::string("not a domain")
                                                      : rule.error().message));
                           }
                           tls.passthrough.push_back(std::move(value));
                       }
                   }},
                  {"upstream_ca",
                   [&](const YAML::Node& n) { tls.upstream_ca = w.string(n, "tls.upstream_ca"); }},
                  {"intercept_denied",
                   [&](const YAML::Node& n) {
                       tls.intercept_denied = w.boolean(n, "tls.intercept_denied");
                   }},
              });
}

void walk_labels(const Walker& w, const YAML::Node& node, Labels& labels) {
    auto label = [&](std::optional<Setting<std::string>>& slot, const char* key) {
        return [&, key](const YAML::Node& n) { slot = w.string(n, std::string("labels.") + key); };
    };
    w.mapping(node, "labels",
              {
                  {"workspace_id", label(labels.workspace_id, "workspace_id")},
                  {"workspace_name", label(labels.workspace_name, "workspace_name")},
                  {"owner", label(labels.owner, "owner")},
                  {"template_id", label(labels.template_id, "template_id")},
                  {"template_version_id", label(labels.template_version_id, "template_version_id")},
              });
}

void walk_root(const Walker& w, const YAML::Node& root, FileConfig& c) {
    auto flag = [&](std::optional<Setting<bool>>& slot, const char* key) {
        return [&, key](const YAML::Node& n) { slot = w.boolean(n, key); };
    };
    w.mapping(
        root, "config",
        {
            {"allowlist", [&](const YAML::Node& n) { c.allowlist = w.rules(n, "allowlist"); }},
            {"denylist", [&](const YAML::Node& n) { c.denylist = w.rules(n, "denylist"); }},
            {"jail_type",
             [&](const YAML::Node& n) {
                 c.jail_type = w.one_of(n, "jail_type", {"landjail", "nsjail"});
             }},
            {"log_dir", [&](const YAML::Node& n) { c.log_dir = w.string(n, "log_dir"); }},
            {"proxy_port",
             [&](const YAML::Node& n) { c.proxy_port = w.port(n, "proxy_port", true); }},
            {"log_level",
             [&](const YAML::Node& n) {
                 c.log_level = w.one_of(n, "log_level", {"error", "warn", "info", "debug"}, true);
             }},
            {"no_user_namespace", flag(c.no_user_namespace, "no_user_namespace")},
            {"use_real_dns", flag(c.use_real_dns, "use_real_dns")},
            {"pprof_enabled", flag(c.pprof_enabled, "pprof_enabled")},
            {"pprof_port",
             [&](const YAML::Node& n) { c.pprof_port = w.port(n, "pprof_port", false); }},
            {"disable_audit_logs", flag(c.disable_audit_logs, "disable_audit_logs")},
            {"ca_dir", [&](const YAML::Node& n) { c.ca_dir = w.string(n, "ca_dir"); }},
            {"max_connections",
             [&](const YAML::Node& n) {
                 const int max = static_cast<int>(kMaxConnectionsLimit);
                 c.max_connections = Setting<std::uint32_t>{
                     static_cast<std::uint32_t>(w.integer(n, "max_connections", 1, max)),
                     w.origin(n)};
             }},
            {"configure_dns_for_local_stub_resolver",
             flag(c.configure_dns_for_local_stub_resolver,
                  "configure_dns_for_local_stub_resolver")},
            {"ambiguous_paths",
             [&](const YAML::Node& n) {
                 c.ambiguous_paths = w.one_of(n, "ambiguous_paths", {"refuse", "literal"});
             }},
            {"audit", [&](const YAML::Node& n) { walk_audit(w, n, c.audit); }},
            {"tls", [&](const YAML::Node& n) { walk_tls(w, n, c.tls); }},
            {"labels", [&](const YAML::Node& n) { walk_labels(w, n, c.labels); }},
            // The keys of newer boundary releases (the Coder agent's audit socket, session
            // correlation) and landjail's log_proxy_drop_counts.
            {"upstream_proxy",
             [&](const YAML::Node& n) {
                 c.boundary_only.upstream_proxy = w.text(n, "upstream_proxy");
             }},
            {"log_proxy_socket_path",
             [&](const YAML::Node& n) {
                 c.boundary_only.log_proxy_socket_path = w.text(n, "log_proxy_socket_path");
             }},
            {"log_proxy_drop_counts",
             flag(c.boundary_only.log_proxy_drop_counts, "log_proxy_drop_counts")},
            {"session_correlation_enabled",
             flag(c.boundary_only.session_correlation_enabled, "session_correlation_enabled")},
            {"session_id_inject_targets",
             [&](const YAML::Node& n) {
                 for (const YAML::Node& item : w.list(n, "session_id_inject_targets", "targets")) {
                     c.boundary_only.session_id_inject_targets.push_back(
                         w.text(item, "session_id_inject_targets"));
                 }
             }},
            {"session_id_header_name",
             [&](const YAML::Node& n) {
                 c.boundary_only.session_id_header_name = w.text(n, "session_id_header_name");
             }},
            {"sequence_number_header_name",
             [&](const YAML::Node& n) {
                 c.boundary_only.sequence_number_header_name =
                     w.text(n, "sequence_number_header_name");
             }},
        });
}

}  // namespace

namespace {

Result<FileConfig> parse(std::string_view text, std::string_view file, bool rules_only) {
    FileConfig config;
    config.file = std::string(file);
    const Walker walker(file, rules_only);
    try {
        const YAML::Node root = YAML::Load(std::string(text));
        if (root.IsNull()) {
            return config;  // empty document or comments only
        }
        walk_root(walker, root, config);
    } catch (const ConfigFailure& failure) {
        return failure.error;
    } catch (const YAML::Exception& e) {
        return walker.located(
            e.mark, "invalid YAML: " + (e.msg.empty() ? std::string("syntax error") : e.msg));
    } catch (const std::exception& e) {
        return make_error(std::string(file) + ": " + e.what());
    }
    return config;
}

}  // namespace

std::optional<bool> parse_bool_word(std::string_view word) {
    const std::string w = to_lower(word);
    if (w == "1" || w == "t" || w == "true" || w == "y" || w == "yes" || w == "on") {
        return true;
    }
    if (w == "0" || w == "f" || w == "false" || w == "n" || w == "no" || w == "off") {
        return false;
    }
    return std::nullopt;
}

Result<FileConfig> parse_config(std::string_view text, std::string_view file) {
    return parse(text, file, false);
}

Result<FileConfig> parse_profile(std::string_view text, std::string_view file) {
    return parse(text, file, true);
}

}  // namespace lj::policy
