// SPDX-License-Identifier: Apache-2.0
#include "landjail/subcommands.hpp"

#include <cstdio>
#include <iostream>
#include <string>

#include "landjail/jail/protection.hpp"
#include "policy/request.hpp"
#include "policy/rule.hpp"
#include "proxy/base/config_loader.hpp"
#include "proxy/base/diag.hpp"

namespace lj::jail {
namespace {

void print_warnings(const policy::Settings& s) {
    for (const auto* list : {&s.jail_warnings, &s.warnings}) {
        for (const std::string& w : *list) {
            diag::warn(w);
        }
    }
}

std::string pad(std::string s, std::size_t width) {
    if (s.size() < width) {
        s.resize(width, ' ');
    }
    return s + " ";
}

void print_rules(const char* title, const std::vector<policy::Rule>& rules) {
    if (rules.empty()) {
        std::cout << title << ": none\n";
        return;
    }
    std::size_t width = 0;
    for (const auto& r : rules) {
        width = std::max(width, r.text.size());
    }
    std::cout << title << " (" << rules.size() << "):\n";
    for (std::size_t i = 0; i < rules.size(); ++i) {
        std::cout << "  " << pad(std::to_string(i + 1), 3) << pad(rules[i].text, width) << " ["
                  << rules[i].origin << "]\n";
    }
}

template <class T>
void print_setting(const char* name, const T& value, const std::string& origin) {
    std::cout << "  " << pad(name, 19) << pad(value, 28) << "[" << origin << "]\n";
}

template <class T>
void print_optional(const char* name, const std::optional<policy::Setting<T>>& s) {
    if (s) {
        print_setting(name, s->value, s->origin);
    } else {
        print_setting(name, std::string("(not set)"), "default");
    }
}

std::string yes_no(bool b) {
    return b ? "true" : "false";
}

/// The CA directory and boundary's settings that have no effect here, with their origins.
/// The Coder agent's socket, session correlation and the denied-tunnel interception.
void print_coder_settings(const policy::Settings& s) {
    if (s.coder.socket) {
        print_setting("log_proxy_socket_path",
                      s.coder.socket->value + " (used when it exists at start-up)",
                      s.coder.socket->origin);
    } else {
        print_setting("log_proxy_socket_path", "(off)", s.disable_audit_logs.origin);
    }
    print_setting("log_proxy_drop_counts", yes_no(s.coder.drop_counts.value),
                  s.coder.drop_counts.origin);
    const auto& c = s.correlation;
    print_setting("session_correlation_enabled", yes_no(c.enabled.value), c.enabled.origin);
    for (const policy::RuleSource& t : c.targets) {
        print_setting("session_id_inject_target", t.text, t.origin);
    }
    print_setting("session_id_header_name", c.session_header.value, c.session_header.origin);
    print_setting("sequence_number_header_name", c.sequence_header.value,
                  c.sequence_header.origin);
    const auto& i = s.tls.intercept_denied;
    print_setting("tls.intercept_denied", yes_no(!i || i->value), i ? i->origin : "default");
}

void print_boundary_settings(const policy::Settings& s) {
    print_setting("ca_dir", s.ca_dir.value, s.ca_dir.origin);
    print_setting("pprof_enabled", yes_no(s.pprof_enabled.value) + " (no effect)",
                  s.pprof_enabled.origin);
    print_setting("pprof_port", std::to_string(s.pprof_port.value) + " (no effect)",
                  s.pprof_port.origin);
    print_setting("use_real_dns", yes_no(s.use_real_dns.value) + " (no effect)",
                  s.use_real_dns.origin);
    print_setting("no_user_namespace", yes_no(s.no_user_namespace.value) + " (no effect)",
                  s.no_user_namespace.origin);
    if (s.upstream_proxy) {
        print_setting("upstream_proxy", s.upstream_proxy->value + " (not supported)",
                      s.upstream_proxy->origin);
    }
    print_coder_settings(s);
}

/// Single-quotes for a POSIX shell.
std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

}  // namespace

Status check_strict(const CliOptions& cli, const policy::Settings& s) {
    if (!cli.strict || s.any_host_rules.empty()) {
        return {};
    }
    std::string msg;
    for (const std::string& r : s.any_host_rules) {
        msg += (msg.empty() ? "" : "; ") + r;
    }
    return make_error("--strict: " + msg);
}

int run_check(const CliOptions& cli) {
    proxy::ConfigChoice choice;
    auto settings = proxy::load_settings(cli.config, cli.flags, &choice);
    if (!settings) {
        diag::error(settings.error().what());
        diag::error("configuration is invalid");
        return kExitUsage;
    }
    const policy::Settings& s = *settings;
    if (auto strict = check_strict(cli, s); !strict) {
        diag::error(strict.error().message);
        diag::error("configuration is invalid (--strict)");
        return kExitUsage;
    }
    print_warnings(s);
    std::cout << "configuration is valid\n";
    std::cout << "config file: " << (choice.path ? *choice.path + " [" + choice.how + "]" : "none")
              << "\n";
    for (const auto& [name, path] : choice.profiles) {
        std::cout << "profile: " << name << " [" << path << "]\n";
    }
    print_rules("allow rules", s.engine->allow_rules());
    if (s.engine->allow_rules().empty()) {
        std::cout << "  (no allow rule: every request will be denied)\n";
    }
    print_rules("deny rules", s.engine->deny_rules());
    std::cout << "settings:\n";
    print_setting("log_level", s.log_level.value, s.log_level.origin);
    print_optional("log_dir", s.log_dir);
    print_setting("proxy_port",
                  s.proxy_port.value ? std::to_string(s.proxy_port.value)
                                     : std::string("0 (free ephemeral port)"),
                  s.proxy_port.origin);
    print_setting("jail_type", s.jail_type.value, s.jail_type.origin);
    print_optional("audit_file", s.audit_file);
    print_setting("max_connections",
                  s.max_connections ? std::to_string(s.max_connections->value)
                                    : std::string("(from the fd limit)"),
                  s.max_connections ? s.max_connections->origin : std::string("default"));
    print_setting("disable_audit_logs", std::string(s.disable_audit_logs.value ? "true" : "false"),
                  s.disable_audit_logs.origin);
    print_setting("ambiguous_paths", s.ambiguous_paths.value, s.ambiguous_paths.origin);
    if (s.audit.required) {
        print_setting("audit.required", std::string(s.audit.required->value ? "true" : "false"),
                      s.audit.required->origin);
    }
    if (!s.tls.passthrough.empty()) {
        std::string list;
        for (const auto& d : s.tls.passthrough) {
            list += (list.empty() ? "" : ",") + d;
        }
        print_setting("tls.passthrough", list, "config file");
    }
    print_optional("tls.upstream_ca", s.tls.upstream_ca);
    print_boundary_settings(s);
    return kExitAllow;
}

int run_explain(const CliOptions& cli) {
    auto settings = proxy::load_settings(cli.config, cli.flags);
    if (!settings) {
        diag::error(settings.error().what());
        return kExitUsage;
    }
    print_warnings(*settings);
    const std::string& method = cli.args.at(0);
    const std::string& url = cli.args.at(1);
    auto req = policy::parse_request(method, url);
    if (!req) {
        diag::error("explain: cannot decide " + method + " " + url + ": " + req.error().message);
        return kExitUsage;
    }
    const policy::Decision d = settings->engine->evaluate(*req);
    std::cout << (d.allowed ? "allow " : "deny ") << req->method << " " << req->url() << "\n";
    if (d.rule) {
        std::cout << "  rule:     " << d.rule->text << "  [" << d.rule->origin << "]\n";
    } else {
        std::cout << "  rule:     none\n";
    }
    std::cout << "  reason:   " << policy::to_string(d.reason) << "\n";
    std::cout << "  request:  method=" << req->method << " scheme=" << req->scheme
              << " host=" << req->host.authority() << " port=" << req->port << " path=" << req->path
              << "\n";
    if (req->has_query) {
        std::cout << "  query:    not matched by rules\n";
    }
    if (d.reason == policy::Reason::NoRuleMatched) {
        std::cout << "  to allow: --allow " << shell_quote(policy::suggested_rule(*req)) << "\n";
    }
    return d.allowed ? kExitAllow : kExitDeny;
}

int run_doctor(const CliOptions& cli) {
    auto req =
        cli.require ? parse_requirements(*cli.require) : Result<Requirements>(Requirements{});
    if (!req) {
        diag::error(req.error().message);
        return kExitUsage;
    }
    const HostFacts facts = probe_host(true);
    std::cout << describe(facts);
    auto plan = plan_protection(facts, *req, cli.allow_weak);
    if (!plan) {
        std::cout << "protection:             none: landjail refuses to run here\n";
        std::cout << "  why: " << plan.error().message << "\n";
        return kExitDeny;
    }
    std::cout << "protection:             " << plan->summary << "\n";
    for (const std::string& lost : plan->lost) {
        std::cout << "  lost: " << lost << "\n";
    }
    return kExitAllow;
}

}  // namespace lj::jail
