// SPDX-License-Identifier: Apache-2.0
#include "landjail/cli.hpp"

#include <getopt.h>

#include <array>
#include <string_view>

namespace lj::jail {
namespace {

constexpr std::array kTable = {
    OptSpec{"config", 'c', "PATH",
            "read this config file (default: discovered, see FILES in landjail(1))", false},
    OptSpec{"allow", 'a', "RULE",
            "allow requests matching RULE, e.g. 'domain=github.com method=GET'", true},
    OptSpec{"deny", 0, "RULE", "deny requests matching RULE even when an allow rule matches", true},
    OptSpec{"log-level", 0, "LEVEL", "error, warn (default), info or debug", false},
    OptSpec{"log-dir", 0, "DIR", "directory for logs; the audit log defaults to DIR/audit.jsonl",
            false},
    OptSpec{"proxy-port", 0, "PORT", "port of the proxy (default: a free ephemeral port)", false},
    OptSpec{"jail-type", 0, "TYPE",
            "accepted for boundary compatibility: landjail (nsjail runs landjail)", false},
    OptSpec{"audit-log", 0, "PATH", "write the audit trail (JSON lines) to PATH", false},
    OptSpec{"disable-audit-logs", 0, nullptr, "do not write audit events", false},
    OptSpec{"version", 0, nullptr, "print the version and exit", false},
    OptSpec{"help", 'h', nullptr, "print this help and exit", false},
};

bool is_subcommand(std::string_view s) {
    return s == "check" || s == "explain";
}

/// Runs getopt_long over argv[0..argc) (argv[0] is skipped), storing into `out`.
/// `permute`: options may follow operands (subcommands); otherwise parsing stops at the first
/// operand (the command to run and its own options).
Result<int> run_getopt(int argc, char** argv, bool permute, CliOptions& out) {
    std::vector<option> longopts;
    std::string shortopts = permute ? ":" : "+:";
    for (const OptSpec& spec : kTable) {
        const int val =
            spec.short_name ? spec.short_name : 256 + static_cast<int>(&spec - kTable.data());
        longopts.push_back(
            {spec.long_name, spec.arg ? required_argument : no_argument, nullptr, val});
        if (spec.short_name) {
            shortopts += spec.short_name;
            if (spec.arg) {
                shortopts += ':';
            }
        }
    }
    longopts.push_back({nullptr, 0, nullptr, 0});
    opterr = 0;
    optind = 0;  // glibc: full re-initialisation
    for (;;) {
        const int opt = getopt_long(argc, argv, shortopts.c_str(), longopts.data(), nullptr);
        if (opt == -1) {
            break;
        }
        const std::string text = optind > 0 && optind <= argc ? argv[optind - 1] : "";
        if (opt == ':') {
            return make_error("option '" + text + "' needs a value (see landjail --help)");
        }
        if (opt == '?') {
            if (optopt > 0 && optopt < 256) {
                return make_error("unrecognized option '-" +
                                  std::string(1, static_cast<char>(optopt)) +
                                  "' (see landjail --help)");
            }
            return make_error("unrecognized option '" + text + "' (see landjail --help)");
        }
        const OptSpec* spec = nullptr;
        for (const OptSpec& s : kTable) {
            const int val =
                s.short_name ? s.short_name : 256 + static_cast<int>(&s - kTable.data());
            if (val == opt) {
                spec = &s;
            }
        }
        const std::string_view name = spec->long_name;
        const std::string value = optarg ? optarg : "";
        if (name == "config") {
            out.config = value;
        } else if (name == "allow") {
            out.flags.allow.push_back(value);
        } else if (name == "deny") {
            out.flags.deny.push_back(value);
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
        } else if (name == "disable-audit-logs") {
            out.flags.disable_audit_logs = true;
        } else if (name == "version") {
            out.command = Command::Version;
        } else if (name == "help") {
            out.command = Command::Help;
        }
    }
    return optind;
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
    int next = *first;
    if (out.command == Command::Help || out.command == Command::Version) {
        return out;
    }
    const bool after_dashdash = next > 1 && std::string_view(argv[next - 1]) == "--";
    if (next < argc && !after_dashdash && is_subcommand(argv[next])) {
        out.command = std::string_view(argv[next]) == "check" ? Command::Check : Command::Explain;
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
        if (out.command == Command::Check && !out.args.empty()) {
            return make_error("check takes no operands (got '" + out.args.front() + "')");
        }
        if (out.command == Command::Explain && out.args.size() != 2) {
            return make_error(
                "explain needs exactly two operands: METHOD URL, e.g. "
                "landjail explain GET https://api.github.com/repos");
        }
        return out;
    }
    for (int i = next; i < argc; ++i) {
        out.args.emplace_back(argv[i]);
    }
    return out;
}

std::string help_text() {
    std::string out =
        "Usage: landjail [OPTIONS] -- COMMAND [ARG...]\n"
        "       landjail check [OPTIONS]\n"
        "       landjail explain [OPTIONS] METHOD URL\n"
        "\n"
        "Run COMMAND so that it can reach only the HTTP(S) destinations the policy allows.\n"
        "\n"
        "Commands:\n"
        "  check                validate the configuration and print the effective policy\n"
        "  explain METHOD URL   print allow or deny for one request, the rule that decided it\n"
        "                       and the normalized request (exit 0 allow, 1 deny, 2 error)\n"
        "\n"
        "Options:\n";
    for (const OptSpec& spec : kTable) {
        std::string left = "  ";
        left += spec.short_name ? std::string("-") + spec.short_name + ", " : std::string("    ");
        left += "--" + std::string(spec.long_name);
        if (spec.arg) {
            left += " " + std::string(spec.arg);
        }
        if (left.size() < 28) {
            left.resize(28, ' ');
        } else {
            left += "\n" + std::string(28, ' ');
        }
        out += left + spec.help + (spec.repeatable ? " (repeatable)" : "") + "\n";
    }
    out +=
        "\n"
        "Rules are 'key=value ...' with the keys domain, method, path and port; see landjail(1).\n"
        "Configuration: --config, $LANDJAIL_CONFIG, $BOUNDARY_CONFIG, "
        "~/.config/landjail/config.yaml,\n"
        "~/.config/coder_boundary/config.yaml (the first that is given or exists).\n";
    return out;
}

}  // namespace lj::jail
