// SPDX-License-Identifier: Apache-2.0
#include "landjail/cli.hpp"

#include <array>
#include <string_view>

namespace lj::jail {
namespace {

using proxy::OptRow;
using Row = OptRow<CliOptions>;

/// A setter for a text option of CliOptions.
template <std::optional<std::string> CliOptions::*M>
Status text(CliOptions& o, const std::string& v) {
    o.*M = v;
    return {};
}

template <bool CliOptions::*M>
Status flag(CliOptions& o, const std::string& v) {
    o.*M = proxy::flag_on(v);
    return {};
}

/// boundary's flags that landjail accepts without effect: kept with their origin for check.
template <std::optional<bool> policy::FlagInputs::*M>
Status boundary_flag(CliOptions& o, const std::string& v) {
    o.flags.*M = proxy::flag_on(v);
    return {};
}

Status keep_fd(CliOptions& o, const std::string& value);

std::vector<Row> make_table() {
    std::vector<Row> t = proxy::shared_rows_for<CliOptions>();
    const auto flags = [](std::optional<std::string> policy::FlagInputs::*m) {
        return [m](CliOptions& o, const std::string& v) -> Status {
            o.flags.*m = v;
            return {};
        };
    };
    const std::vector<Row> own = {
        {{"log-dir", 0, "DIR", "directory for logs; the audit log defaults to DIR/audit.jsonl",
          false},
         flags(&policy::FlagInputs::log_dir)},
        {{"proxy-port", 0, "PORT", "port of the proxy (default: a free ephemeral port)", false},
         flags(&policy::FlagInputs::proxy_port)},
        {{"jail-type", 0, "TYPE",
          "accepted for boundary compatibility: landjail (nsjail runs landjail with a warning)",
          false},
         flags(&policy::FlagInputs::jail_type)},
        {{"pprof", 0, nullptr,
          "accepted for boundary compatibility; no effect (landjail has no pprof server; one "
          "warning)",
          false},
         &boundary_flag<&policy::FlagInputs::pprof>},
        {{"pprof-port", 0, "PORT", "accepted for boundary compatibility; no effect", false},
         flags(&policy::FlagInputs::pprof_port)},
        {{"upstream-proxy", 0, "URL",
          "accepted for boundary compatibility; not supported: the proxy connects to origins "
          "directly (one warning)",
          false},
         flags(&policy::FlagInputs::upstream_proxy)},
        {{"proxy-addr", 0, "HOST:PORT",
          "use the landjail-proxy already listening there instead of starting one", false},
         &text<&CliOptions::proxy_addr>},
        {{"require", 0, "LAYER,...",
          "fail unless these layers hold: landlock (network rules), seccomp (the supervisor)",
          false},
         &text<&CliOptions::require>},
        {{"allow-weak", 0, nullptr,
          "without seccomp notification, run with a Landlock port rule only (weak)", false},
         &flag<&CliOptions::allow_weak>},
        {{"no-shim", 0, nullptr, "do not preload the shim into COMMAND", false},
         &flag<&CliOptions::no_shim>},
        {{"strict", 0, nullptr,
          "refuse allow rules without domain= (they match every host) instead of warning", false},
         &flag<&CliOptions::strict>},
        {{"keep-fd", 0, "N",
          "give COMMAND the inherited descriptor N even if it is a network socket (closed "
          "otherwise: it would send around the proxy)",
          true},
         &keep_fd},
        {{"use-real-dns", 0, nullptr,
          "accepted for boundary compatibility; no effect (the jail has no DNS: names are "
          "resolved by the proxy)",
          false},
         &boundary_flag<&policy::FlagInputs::use_real_dns>},
        {{"no-user-namespace", 0, nullptr,
          "accepted for boundary compatibility; no effect (landjail never uses namespaces)", false},
         &boundary_flag<&policy::FlagInputs::no_user_namespace>},
        {{"version", 0, nullptr, "print the version (one line) and exit", false},
         [](CliOptions& o, const std::string& v) -> Status {
             if (proxy::flag_on(v)) {
                 o.command = Command::Version;
             }
             return {};
         }},
        {{"help", 'h', nullptr, "print this help and exit", false},
         [](CliOptions& o, const std::string& v) -> Status {
             if (proxy::flag_on(v)) {
                 o.command = Command::Help;
             }
             return {};
         }},
    };
    t.insert(t.end(), own.begin(), own.end());
    return t;
}

/// --help under boundary's names: boundary's usage line, landjail's options.
std::string boundary_help(std::string_view name) {
    const std::string n(name);
    return "Usage: " + n + " [flags] -- command [args...]\n" +
           "\n"
           "This " +
           n +
           " is landjail, a drop-in for coder/boundary's CLI: it runs the command so that it\n"
           "reaches only the HTTP(S) destinations the policy allows (boundary's config.yaml,\n"
           "--allow rules and environment variables). It has no subcommands: what follows the\n"
           "options (after --) is the command, a later -- included. landjail's own commands\n"
           "(check, explain, doctor) are available as `landjail`.\n"
           "\n"
           "Options:\n" +
           proxy::format_rows(options()) +
           "\n"
           "Flags also take =true or =false (and 1/0, t/f, yes/no, on/off). See landjail(1).\n";
}

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

Status keep_fd(CliOptions& o, const std::string& value) {
    auto fd = parse_fd(value);
    if (!fd) {
        return fd.error();
    }
    o.keep_fds.push_back(*fd);
    return {};
}

Result<int> run_getopt(int argc, char** argv, bool permute, CliOptions& out,
                       std::string_view program = "landjail") {
    return proxy::parse_rows(argc, argv, options(), permute, program, out);
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

const std::vector<Row>& options() {
    static const std::vector<Row> table = make_table();
    return table;
}

bool is_boundary_name(std::string_view name) {
    return name == "boundary" || name == "agent-firewall";
}

std::string invoked_name(const char* argv0) {
    std::string_view name = argv0 ? argv0 : "";
    if (const std::size_t slash = name.rfind('/'); slash != std::string_view::npos) {
        name.remove_prefix(slash + 1);
    }
    return is_boundary_name(name) ? std::string(name) : std::string("landjail");
}

Result<CliOptions> parse_cli(int argc, char** argv, Command* seen, bool as_boundary) {
    CliOptions out;
    Command ignored = Command::Run;
    Command& detected = seen ? *seen : ignored;
    detected = Command::Run;
    // Usage errors point at --help under the name we run as ("see boundary --help").
    const std::string program = as_boundary ? invoked_name(argv[0]) : "landjail";
    auto first = run_getopt(argc, argv, false, out, program);
    if (!first) {
        return first.error();
    }
    const int next = *first;
    if (out.command == Command::Help || out.command == Command::Version) {
        return out;
    }
    const bool after_dashdash = next > 1 && std::string_view(argv[next - 1]) == "--";
    // boundary's CLI has no subcommands: `boundary check` runs a command named check.
    if (next < argc && !after_dashdash && !as_boundary && is_subcommand(argv[next])) {
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

std::string help_text(std::string_view name) {
    if (is_boundary_name(name)) {
        return boundary_help(name);
    }
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
           proxy::format_rows(options()) +
           "\n"
           "Rules are 'key=value ...' with the keys domain, method, path and port; see "
           "landjail(1).\n"
           "Configuration: --config, $LANDJAIL_CONFIG, $BOUNDARY_CONFIG, "
           "~/.config/landjail/config.yaml,\n"
           "~/.config/coder_boundary/config.yaml (the first that is given or exists).\n"
           "Flags also take =true or =false (and 1/0, t/f, yes/no, on/off).\n";
}

}  // namespace lj::jail
