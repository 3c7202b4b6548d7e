// SPDX-License-Identifier: Apache-2.0
// Table-driven command lines: one OptSpec table per program drives getopt_long, the --help
// text and the man-page check (STYLE "Config and CLI"). Shared by landjail and landjail-proxy.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "policy/result.hpp"

namespace lj::proxy {

struct OptSpec {
    const char* long_name;
    char short_name;  ///< 0 when none
    /// Value name ("RULE"); nullptr for a flag, which is given as --flag (true) or, as in
    /// boundary's flag library, --flag=WORD with a true/false word (policy::parse_bool_word:
    /// true, false, 1, 0, t, f, yes, no, on, off, any letter case).
    const char* arg;
    const char* help;
    bool repeatable;
};

/// Called once per option found, with its spec and value ("true" or "false" for flags). An
/// error stops parsing and is returned by parse_options.
using OptHandler = std::function<Status(const OptSpec&, const std::string& value)>;

/// Runs getopt_long over argv[1..argc). `permute`: options may follow operands; otherwise
/// parsing stops at the first operand (a command and its own options). Returns the index of
/// the first operand. Errors name the option: "unrecognized option '--x'", "option '--allow'
/// needs a value", "option '--pprof' takes true or false, not 'x'". `program` is used in the "(see
/// PROGRAM --help)" hint.
Result<int> parse_options(int argc, char** argv, std::span<const OptSpec> table, bool permute,
                          std::string_view program, const OptHandler& handler);

/// The "Options:" block of --help, one option per line, generated from the table.
std::string format_options(std::span<const OptSpec> table);

}  // namespace lj::proxy
