// SPDX-License-Identifier: Apache-2.0
// The command line of `landjail`: one option table drives getopt_long, --help and the
// man-page check. Parsing is pure: it fills CliOptions or returns a usage error.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/result.hpp"
#include "policy/settings.hpp"
#include "proxy/base/options.hpp"

namespace lj::jail {

enum class Command { Run, Check, Explain, Doctor, Help, Version };

/// landjail's options; the shared ones (config, rules, audit sinks, resolve, upstream_ca,
/// ca_dir, …) are forwarded to the proxy landjail starts.
struct CliOptions : proxy::SharedOptions {
    Command command = Command::Run;
    std::vector<std::string> args;  ///< explain: METHOD URL; run: COMMAND ARGS…
    // The jail (landjail -- COMMAND and doctor).
    std::optional<std::string> proxy_addr;  ///< use this running proxy, start none
    std::optional<std::string> require;     ///< --require landlock,seccomp
    bool allow_weak = false;
    bool no_shim = false;
    bool strict = false;        ///< refuse allow rules without domain= (they match every host)
    std::vector<int> keep_fds;  ///< --keep-fd: inherited descriptors COMMAND keeps
};

/// Every option landjail accepts, in --help order: the shared rows and landjail's own.
const std::vector<proxy::OptRow<CliOptions>>& options();

/// Parses argv (argv[0] is the program). Errors are usage errors for the user; `seen` (when
/// given) receives the command recognised so far, so the caller picks the right exit status.
/// `as_boundary`: boundary's CLI (`NAME [flags] -- command [args...]`): no subcommands, the
/// first operand is the command (`check` included) and every later `--` is the command's.
Result<CliOptions> parse_cli(int argc, char** argv, Command* seen = nullptr,
                             bool as_boundary = false);

/// The name to behave as, from argv[0]'s basename: "boundary" or "agent-firewall" (boundary's
/// CLI, see parse_cli), else "landjail".
std::string invoked_name(const char* argv0);

/// The --help text generated from the table; under boundary's names, boundary's usage line.
std::string help_text(std::string_view name = "landjail");

}  // namespace lj::jail
