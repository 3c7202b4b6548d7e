// SPDX-License-Identifier: Apache-2.0
// The options both programs take (nsjail's one-schema idea): one group of rows, each carrying
// its spec (name, value, help), its setter and the values it forwards. landjail and
// landjail-proxy put the group into their own tables, and landjail passes the same rows on
// to the proxy it starts (forward_shared), so adding a policy option touches one row here
// (and the field it sets).
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "policy/result.hpp"
#include "policy/settings.hpp"
#include "proxy/base/opt_table.hpp"

namespace lj::proxy {

/// What the shared options set. Each program's options struct derives from it.
struct SharedOptions {
    std::optional<std::string> config;
    policy::FlagInputs flags;  ///< --allow, --deny, --profile, --log-level, --audit-log, …
    std::vector<std::string> resolve;
    std::optional<std::string> upstream_ca;
};

/// One shared option: `set` stores a value (errors name the option); `values` lists what it
/// holds, as command-line values ("" for a flag that is set), for forwarding.
struct SharedRow {
    OptSpec spec;
    Status (*set)(SharedOptions&, const std::string& value);
    std::vector<std::string> (*values)(const SharedOptions&);
};

/// Every shared option, in --help order.
std::span<const SharedRow> shared_rows();

/// The landjail-proxy arguments that give it the same shared options as `o`, row by row.
std::vector<std::string> forward_shared(const SharedOptions& o);

/// A row of one program's table: its spec and a setter on that program's options.
template <class Target>
struct OptRow {
    OptSpec spec;
    std::function<Status(Target&, const std::string&)> set;
};

/// The shared rows as rows of `Target` (which derives from SharedOptions).
template <class Target>
std::vector<OptRow<Target>> shared_rows_for() {
    std::vector<OptRow<Target>> out;
    for (const SharedRow& r : shared_rows()) {
        out.push_back({r.spec, [set = r.set](Target& t, const std::string& v) {
                           return set(static_cast<SharedOptions&>(t), v);
                       }});
    }
    return out;
}

/// Parses argv with `rows` (see parse_options: `permute`, errors, the returned operand index).
template <class Target>
Result<int> parse_rows(int argc, char** argv, const std::vector<OptRow<Target>>& rows, bool permute,
                       std::string_view program, Target& out) {
    std::vector<OptSpec> specs;
    for (const auto& r : rows) {
        specs.push_back(r.spec);
    }
    return parse_options(argc, argv, specs, permute, program,
                         [&](const OptSpec& spec, const std::string& value) -> Status {
                             return rows[static_cast<std::size_t>(&spec - specs.data())].set(out,
                                                                                             value);
                         });
}

/// The "Options:" block of --help for `rows`.
template <class Target>
std::string format_rows(const std::vector<OptRow<Target>>& rows) {
    std::vector<OptSpec> specs;
    for (const auto& r : rows) {
        specs.push_back(r.spec);
    }
    return format_options(specs);
}

/// What a flag's setter receives is "true" or "false" (parse_options reads --flag and
/// --flag=WORD); this says which.
inline bool flag_on(const std::string& value) {
    return value != "false";
}

/// A whole number from `min` to `max` for option `name` (errors quote the option and value).
Result<unsigned long> option_number(std::string_view name, const std::string& value,
                                    unsigned long min, unsigned long max);

}  // namespace lj::proxy
