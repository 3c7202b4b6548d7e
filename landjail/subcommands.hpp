// SPDX-License-Identifier: Apache-2.0
// The subcommands of landjail. Each returns the process exit status.
#pragma once

#include "landjail/cli.hpp"

namespace lj::jail {

/// Exit statuses (DESIGN §8; explain and check have their own documented contract).
inline constexpr int kExitAllow = 0;
inline constexpr int kExitDeny = 1;
inline constexpr int kExitUsage = 2;     ///< check/explain: bad input or configuration
inline constexpr int kExitFailed = 125;  ///< landjail itself failed before running COMMAND

/// --strict: an error naming each allow rule without domain= (it matches every host); ok
/// without --strict or without such rules. `check` and `landjail -- COMMAND` apply it.
Status check_strict(const CliOptions& cli, const policy::Settings& s);

/// `landjail check`: validates the configuration, prints the effective policy with the origin
/// of every rule and setting. 0 when valid, 2 when not.
int run_check(const CliOptions& cli);

/// `landjail explain METHOD URL`: prints `allow` or `deny` as the first word, the deciding
/// rule and the normalized request. 0 allow, 1 deny, 2 error.
int run_explain(const CliOptions& cli);

/// `landjail [OPTIONS] -- COMMAND`: the jail (DESIGN §3); the command's exit status, 128+N
/// when it died of signal N, 125 when landjail failed, 126/127 when COMMAND cannot run.
int run_command(const CliOptions& cli);

/// `landjail doctor`: the host's facts and the protection level. 0 when landjail can run
/// here (with the given --require/--allow-weak), 1 when it would refuse.
int run_doctor(const CliOptions& cli);

}  // namespace lj::jail
