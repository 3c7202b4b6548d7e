// SPDX-License-Identifier: Apache-2.0
#include "landjail/cli.hpp"

#include <array>
#include <string_view>

namespace lj::jail {
namespace {

using proxy::OptSpec;

constexpr std::array kTable = {
    OptSpec{"config", 'c', "PATH",
            "read this config file (default: discovered, see FILES in landjail(1))", false},
    OptSpec{"allow", 'a', "RULE",
            "allow requests matching RULE, e.g. 'domain=github.com method=GET'", true},
    OptSpec{"deny", 0, "RULE", "deny requests matching RULE even when an allow rule matches", true},
    OptSpec{"profile", 0, "NAME",
            "add the rules of a shipped profile (claude-code, github, package-managers) or of "
            "a YAML file given by path",
            true},
    OptSpec{"log-level", 0, "LEVEL", "error, warn (default), info or debug", false},
    OptSpec{"log-dir", 0, "DIR", "directory for logs; the audit log defaults to DIR/audit.jsonl",
            false},
    OptSpec{"proxy-port", 0, "PORT", "port of the proxy (default: a free ephemeral port)", false},
    OptSpec{"jail-type", 0, "TYPE",
            "accepted for boundary compatibility: landjail (nsjail runs landjail)", false},
    OptSpec{"proxy-addr", 0, "HOST:PORT",
            "use the landjail-proxy already listening there instead of starting one", false},
    OptSpec{"audit-log", 0, "PATH", "write the audit trail (JSON lines) to PATH", false},
    OptSpec{"audit-socket", 0, "PATH",
            "also send the audit trail (JSON lines) to the unix stream socket at PATH", false},
    OptSpec{"disable-audit-logs", 0, nullptr, "do not write audit events", false},
    OptSpec{"audit-required", 0, nullptr,
            "the proxy refuses requests (503) while the audit trail cannot be written", false},
    OptSpec{"resolve", 0, "HOST:PORT:ADDR[:PORT2]",
            "the proxy connects to ADDR (port PORT2) for HOST:PORT instead of resolving HOST",
            true},
    OptSpec{"upstream-ca", 0, "FILE",
            "the proxy also trusts the CA certificates in FILE for upstream servers", false},
    OptSpec{"max-connections", 0, "N",
            "the proxy serves at most N client connections at once and answers more with 503 "
            "(default: what its file descriptor limit allows, at most 4096)",
            false},
    OptSpec{"ca-dir", 0, "DIR",
            "directory of the interception CA (ca.pem, ca-key.pem; default ~/.config/landjail)",
            false},
    OptSpec{"require", 0, "LAYER,...",
            "fail unless these layers hold: landlock (network rules), seccomp (the supervisor)",
            false},
    OptSpec{"allow-weak", 0, nullptr,
            "without seccomp notification, run with a Landlock port rule only (weak)", false},
    OptSpec{"no-shim", 0, nullptr, "do not preload the shim into COMMAND", false},
    OptSpec{"keep-fd", 0, "N",
            "give COMMAND the inherited descriptor N even if it is a network socket (closed "
            "otherwise: it would send around the proxy)",
            true},
    OptSpec{"use-real-dns", 0, nullptr,
            "accepted for boundary compatibility; landjail never intercepts DNS", false},
    OptSpec{"no-user-namespace", 0, nullptr,
            "accepted for boundary compatibility; landjail never uses namespaces", false},
    OptSpec{"version", 0, nullptr, "print the version and exit", false},
    OptSpec{"help", 'h', nullptr, "print this help and exit", false},
};

bool is_subcommand(std::string_view s) {
    return s == "check" || s == "explain" || s == "doctor";
}

/// --keep-fd N: a descriptor number.
Result<int> parse_fd(const std::string& value) {
    long fd = value.empty() ? -1 : 0;
    for (const char c : value) {
        fd = c >= '0' && c <= '9' && fd <= 0x7fffffff ? fd * 10 + (c - '0') : -1;
        if (fd < 0) {
            break;
        }
    }
    if (fd < 0 || fd > 0x7fffffff) {
        return make_error("--keep-fd '" + value +
                          "': not a file descriptor number (0, 1, 2, 3, ...)");
    }
    return static_cast<int>(fd);
}

/// Stores one parsed option into `out`.
Status store(CliOptions& out, const OptSpec& spec, const std::string& value) {
    const std::string_view name = spec.long_name;
    if (name == "config") {
        out.config = value;
    } else if (name == "allow") {
        out.flags.allow.push_back(value);
    } else if (name == "deny") {
        out.flags.deny.push_back(value);
    } else if (name == "profile") {
        out.flags.profiles.push_back(value);
    } else if (name == "log-level") {
        out.flags.log_level = value;
    } else if (name == "log-dir") {
        out.flags.log_dir = value;
    } else if (name == "proxy-port") {
        out.flags.proxy_port = value;
    } else if (name == "jail-type") {
        out.flags.jail_type = value;
    } else if (name == "audit-log") {
        out.flags.audit_log = value;
    } else if (name == "audit-socket") {
        out.flags.audit_socket = value;
    } else if (name == "disable-audit-logs") {
        out.flags.disable_audit_logs = true;
    } else if (name == "audit-required") {
        out.flags.audit_required = true;
    } else if (name == "proxy-addr") {
        out.proxy_addr = value;
    } else if (name == "resolve") {
        out.resolve.push_back(value);
    } else if (name == "upstream-ca") {
        out.upstream_ca = value;
    } else if (name == "max-connections") {
        out.flags.max_connections = value;
    } else if (name == "ca-dir") {
        out.ca_dir = value;
    } else if (name == "require") {
        out.require = value;
    } else if (name == "allow-weak") {
        out.allow_weak = true;
    } else if (name == "no-shim") {
        out.no_shim = true;
    } else if (name == "keep-fd") {
        auto fd = parse_fd(value);
        if (!fd) {
            return fd.error();
        }
        out.keep_fds.push_back(*fd);
    } else if (name == "use-real-dns" || name == "no-user-namespace") {
        // boundary compatibility: nothing to do
    } else if (name == "version") {
        out.command = Command::Version;
    } else if (name == "help") {
        out.command = Command::Help;
    }
    return {};
}

Result<int> run_getopt(int argc, char** argv, bool permute, CliOptions& out) {
    return proxy::parse_options(
        argc, argv, kTable, permute, "landjail",
        [&](const OptSpec& spec, const std::string& value) { return store(out, spec, value); });
}

/// Operands of check/explain, validated.
Result<CliOptions> finish_subcommand(CliOptions out) {
    if ((out.command == Command::Check || out.command == Command::Doctor) && !out.args.empty()) {
        return make_error(std::string(out.command == Command::Check ? "check" : "doctor") +
                          " takes no operands (got '" + out.args.front() + "')");
    }
    if (out.command == Command::Explain && out.args.size() != 2) {
        return make_error(
            "explain needs exactly two operands: METHOD URL, e.g. "
            "landjail explain GET https://api.github.com/repos");
    }
    return out;
}

}  // namespace

std::span<const OptSpec> options() {
    return kTable;
}

Result<CliOptions> parse_cli(int argc, char** argv, Command* seen) {
    CliOptions out;
    Command ignored = Command::Run;
    Command& detected = seen ? *seen : ignored;
    detected = Command::Run;
    auto first = run_getopt(argc, argv, false, out);
    if (!first) {
        return first.error();
    }
    const int next = *first;
    if (out.command == Command::Help || out.command == Command::Version) {
        return out;
    }
    const bool after_dashdash = next > 1 && std::string_view(argv[next - 1]) == "--";
    if (next < argc && !after_dashdash && is_subcommand(argv[next])) {
        const std::string_view sub = argv[next];
        out.command = sub == "check"     ? Command::Check
                      : sub == "explain" ? Command::Explain
                                         : Command::Doctor;
        detected = out.command;
        // Options may come before or after the operands of a subcommand.
        auto rest = run_getopt(argc - next, argv + next, true, out);
        if (!rest) {
            return rest.error();
        }
        for (int i = next + *rest; i < argc; ++i) {
            out.args.emplace_back(argv[i]);
        }
        if (out.command == Command::Help || out.command == Command::Version) {
            return out;
        }
        return finish_subcommand(std::move(out));
    }
    for (int i = next; i < argc; ++i) {
        out.args.emplace_back(argv[i]);
    }
    return out;
}

std::string help_text() {
    return "Usage: landjail [OPTIONS] -- COMMAND [ARG...]\n"
           "       landjail check [OPTIONS]\n"
           "       landjail explain [OPTIONS] METHOD URL\n"
           "       landjail doctor [OPTIONS]\n"
           "\n"
           "Run COMMAND so that it can reach only the HTTP(S) destinations the policy allows.\n"
           "\n"
           "Commands:\n"
           "  doctor               print what this host can enforce and the protection level\n"
           "  check                validate the configuration and print the effective policy\n"
           "  explain METHOD URL   print allow or deny for one request, the rule that decided "
           "it\n"
           "                       and the normalized request (exit 0 allow, 1 deny, 2 error)\n"
           "\n"
           "Options:\n" +
           proxy::format_options(kTable) +
           "\n"
           "Rules are 'key=value ...' with the keys domain, method, path and port; see "
           "landjail(1).\n"
           "Configuration: --config, $LANDJAIL_CONFIG, $BOUNDARY_CONFIG, "
           "~/.config/landjail/config.yaml,\n"
           "~/.config/coder_boundary/config.yaml (the first that is given or exists).\n";
}

}  // namespace lj::jail
