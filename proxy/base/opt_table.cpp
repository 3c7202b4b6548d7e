// SPDX-License-Identifier: Apache-2.0
#include "proxy/base/opt_table.hpp"

#include <getopt.h>

#include <vector>

#include "policy/config.hpp"

namespace lj::proxy {
namespace {

/// The value a flag's handler receives: "true" for --flag, else its =WORD read as a boolean.
Result<std::string> flag_value(const OptSpec& spec, const char* word) {
    if (!word) {
        return std::string("true");
    }
    if (const std::optional<bool> b = policy::parse_bool_word(word)) {
        return std::string(*b ? "true" : "false");
    }
    return make_error("option '--" + std::string(spec.long_name) + "' takes true or false, not '" +
                      std::string(word) + "'");
}

int value_of(std::span<const OptSpec> table, const OptSpec& spec) {
    return spec.short_name ? spec.short_name : 256 + static_cast<int>(&spec - table.data());
}

}  // namespace

Result<int> parse_options(int argc, char** argv, std::span<const OptSpec> table, bool permute,
                          std::string_view program, const OptHandler& handler) {
    std::vector<option> longopts;
    std::string shortopts = permute ? ":" : "+:";
    for (const OptSpec& spec : table) {
        // A flag takes an optional =WORD (--pprof=false); -h and friends stay bare.
        longopts.push_back({spec.long_name, spec.arg ? required_argument : optional_argument,
                            nullptr, value_of(table, spec)});
        if (spec.short_name) {
            shortopts += spec.short_name;
            shortopts += spec.arg ? ":" : "";
        }
    }
    longopts.push_back({nullptr, 0, nullptr, 0});
    const std::string hint = " (see " + std::string(program) + " --help)";
    opterr = 0;
    optind = 0;  // glibc: full re-initialisation, so the function can run more than once
    for (;;) {
        const int opt = getopt_long(argc, argv, shortopts.c_str(), longopts.data(), nullptr);
        if (opt == -1) {
            return optind;
        }
        const std::string text = optind > 0 && optind <= argc ? argv[optind - 1] : "";
        if (opt == ':') {
            return make_error("option '" + text + "' needs a value" + hint);
        }
        if (opt == '?') {
            const bool short_opt = optopt > 0 && optopt < 256;
            return make_error("unrecognized option '" +
                              (short_opt ? "-" + std::string(1, static_cast<char>(optopt)) : text) +
                              "'" + hint);
        }
        for (const OptSpec& spec : table) {
            if (value_of(table, spec) != opt) {
                continue;
            }
            auto value = spec.arg ? Result<std::string>(std::string(optarg ? optarg : ""))
                                  : flag_value(spec, optarg);
            if (!value) {
                return make_error(value.error().message + hint);
            }
            if (auto ok = handler(spec, *value); !ok) {
                return ok.error();
            }
        }
    }
}

std::string format_options(std::span<const OptSpec> table) {
    constexpr std::size_t kColumn = 28;
    std::string out;
    for (const OptSpec& spec : table) {
        std::string left = "  ";
        left += spec.short_name ? std::string("-") + spec.short_name + ", " : std::string("    ");
        left += "--" + std::string(spec.long_name);
        if (spec.arg) {
            left += " " + std::string(spec.arg);
        }
        if (left.size() < kColumn) {
            left.resize(kColumn, ' ');
        } else {
            left += "\n" + std::string(kColumn, ' ');
        }
        out += left + spec.help + (spec.repeatable ? " (repeatable)" : "") + "\n";
    }
    return out;
}

}  // namespace lj::proxy
